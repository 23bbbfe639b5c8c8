package testvm

import (
	"bytes"
	"fmt"
	"io"
)

// cpioFile is one entry of an initramfs.
type cpioFile struct {
	name string
	mode uint32    // with its type bits
	data []byte    // a regular file's content, a symlink's target
	rdev [2]uint32 // major, minor of a device
}

const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
	cpioLink = 0o120000 // data is the target
)

// writeCpio writes files as a "newc" cpio archive, the format the kernel
// unpacks into its initramfs.
func writeCpio(w io.Writer, files []cpioFile) error {
	var buf bytes.Buffer
	pad := func() {
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	entry := func(ino int, f cpioFile) {
		nlink := 1
		if f.mode&cpioDir == cpioDir {
			nlink = 2
		}
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, f.mode, 0, 0, nlink, 0, len(f.data), 0, 0, f.rdev[0], f.rdev[1], len(f.name)+1, 0)
		buf.WriteString(f.name)
		buf.WriteByte(0)
		pad()
		buf.Write(f.data)
		pad()
	}
	for i, f := range files {
		entry(i+1, f)
	}
	entry(0, cpioFile{name: "TRAILER!!!"})
	_, err := w.Write(buf.Bytes())
	return err
}
