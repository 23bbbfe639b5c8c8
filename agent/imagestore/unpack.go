package imagestore

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Docker's whiteout names (image-spec's layer.md): ".wh.<name>" deletes
// <name> of the layers below; ".wh..wh..opq" in a folder hides everything
// the layers below put in it.
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// unpackLayer extracts one layer's tar into dir (which must not exist) as
// an overlayfs lower directory: whiteouts become overlayfs whiteouts (a
// 0/0 character device) and opaque folders get trusted.overlay.opaque=y,
// as containerd's overlay snapshotter does. Every path stays inside dir:
// entries naming "..", and entries under a symlink, are refused.
func unpackLayer(r io.Reader, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	type dirTimes struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTimes
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel := filepath.Clean("/" + h.Name)
		if rel == "/" {
			// The root itself: its mode belongs to the image's "/".
			if err := os.Chmod(dir, fileMode(h)); err != nil {
				return err
			}
			continue
		}
		path := filepath.Join(dir, rel)
		parent, base := filepath.Dir(path), filepath.Base(path)
		if err := mkdirParents(dir, parent); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		switch {
		case base == opaqueWhiteout:
			if err := unix.Setxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("%s: opaque whiteout: %w", h.Name, err)
			}
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			target := filepath.Join(parent, strings.TrimPrefix(base, whiteoutPrefix))
			os.RemoveAll(target)
			if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("%s: whiteout: %w", h.Name, err)
			}
			continue
		}
		// A later entry replaces an earlier one of the same name, except
		// that a folder stays a folder.
		if fi, err := os.Lstat(path); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(path, 0o700); err != nil && !os.IsExist(err) {
				return err
			}
			dirs = append(dirs, dirTimes{path, h.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		case tar.TypeSymlink:
			// The target is not checked: it is read inside the
			// container's root, never followed here (parents are
			// checked by mkdirParents, and nothing is written through
			// a symlink).
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		case tar.TypeLink:
			target := filepath.Join(dir, filepath.Clean("/"+h.Linkname))
			if err := mkdirParents(dir, filepath.Dir(target)); err != nil {
				return fmt.Errorf("%s: link target: %w", h.Name, err)
			}
			if fi, err := os.Lstat(target); err != nil || fi.IsDir() {
				return fmt.Errorf("%s: hard link to %q, not a file of this layer", h.Name, h.Linkname)
			}
			if err := os.Link(target, path); err != nil {
				return err
			}
			continue // shares the target's inode, owner and mode
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			mode := uint32(unix.S_IFIFO)
			if h.Typeflag == tar.TypeChar {
				mode = unix.S_IFCHR
			} else if h.Typeflag == tar.TypeBlock {
				mode = unix.S_IFBLK
			}
			if err := unix.Mknod(path, mode|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		default:
			continue // pax headers and the like carry no file
		}
		if err := os.Lchown(path, h.Uid, h.Gid); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeSymlink {
			continue
		}
		// After the chown, which clears setuid and setgid; and not
		// through os.FileMode(h.Mode), which loses the sticky bit.
		if err := os.Chmod(path, fileMode(h)); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeDir {
			os.Chtimes(path, h.ModTime, h.ModTime)
		}
	}
	// Folders last: the files created in them changed their times.
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime)
	}
	return nil
}

func fileMode(h *tar.Header) os.FileMode {
	return h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

// mkdirParents makes sure every folder from root down to dir exists and
// is a real folder, never a symlink that could lead out of root.
func mkdirParents(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return errors.New("path escapes the layer")
	}
	if rel == "." {
		return nil
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink: refusing to write through it", cur)
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder", cur)
		}
	}
	return nil
}
