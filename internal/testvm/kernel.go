package testvm

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// debianKernel is Debian's current kernel (what linux-image-amd64
// depends on), fetched with apt-get download and kept in the user's
// cache; the host's own kernel is not touched. No module is needed:
// ttyS0, initramfs, devtmpfs and the memory, cpu and pids controllers are
// built in. It is the uncompressed vmlinux where xz is there to unpack
// it: QEMU boots that directly (PVH), and an emulated CPU takes some 15 s
// to unpack the vmlinuz itself. ATOLL_VM_KERNEL names a kernel instead.
func debianKernel() (string, error) {
	vmlinuz, err := debianVmlinuz()
	if err != nil || os.Getenv("ATOLL_VM_KERNEL") != "" {
		return vmlinuz, err
	}
	vmlinux := filepath.Join(filepath.Dir(vmlinuz), "vmlinux")
	if _, err := os.Stat(vmlinux); err == nil {
		return vmlinux, nil
	}
	if err := unpackVmlinux(vmlinuz, vmlinux); err != nil {
		return vmlinuz, nil // slower to boot, the same kernel
	}
	return vmlinux, nil
}

// unpackVmlinux writes the kernel in bzImage vmlinuz uncompressed to dst:
// Debian's is xz, the first xz stream in the file.
func unpackVmlinux(vmlinuz, dst string) error {
	data, err := os.ReadFile(vmlinuz)
	if err != nil {
		return err
	}
	at := bytes.Index(data, []byte("\xfd7zXZ\x00"))
	if at < 0 {
		return errors.New("no xz stream in " + vmlinuz)
	}
	f, err := os.Create(dst + ".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(dst + ".tmp")
	xz := exec.Command("xz", "-dc", "--single-stream")
	xz.Stdin, xz.Stdout = bytes.NewReader(data[at:]), f
	err = xz.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("xz: %w", err)
	}
	return os.Rename(dst+".tmp", dst)
}

// debianVmlinuz is the kernel package's boot/vmlinuz, fetched once.
func debianVmlinuz() (string, error) {
	if k := os.Getenv("ATOLL_VM_KERNEL"); k != "" {
		return k, nil
	}
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %v: %s", err, out)
	}
	m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64 names no kernel:\n%s", out)
	}
	pkg := string(m[1])
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "atoll", "vm-kernel", pkg)
	vmlinuz := filepath.Join(dir, "vmlinuz")
	if _, err := os.Stat(vmlinuz); err == nil {
		return vmlinuz, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dl, err := os.MkdirTemp(dir, "download")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dl)
	// World-readable, so that apt's unprivileged _apt user may write in it.
	_ = os.Chmod(dl, 0o777)
	get := exec.Command("apt-get", "download", "-q", pkg)
	get.Dir = dl
	if out, err := get.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %v", pkg, debs)
	}
	if err := extractVmlinuz(debs[0], vmlinuz); err != nil {
		return "", fmt.Errorf("%s: %w", debs[0], err)
	}
	return vmlinuz, nil
}

// extractVmlinuz copies the package's boot/vmlinuz-* to dst.
func extractVmlinuz(deb, dst string) error {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	found, err := copyVmlinuz(tar.NewReader(stdout), dst+".tmp")
	// Read to the end: dpkg-deb's decompressor, its child, holds stderr
	// until it has written everything.
	_, _ = io.Copy(io.Discard, stdout)
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("%v: %s", werr, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return err
	}
	if !found {
		return errors.New("no boot/vmlinuz-* in it")
	}
	return os.Rename(dst+".tmp", dst)
}

// copyVmlinuz copies the archive's boot/vmlinuz-* to dst.
func copyVmlinuz(tr *tar.Reader, dst string) (bool, error) {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(strings.TrimPrefix(h.Name, "./"), "boot/vmlinuz-") {
			continue
		}
		f, err := os.Create(dst)
		if err != nil {
			return false, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err == nil, err
	}
}
