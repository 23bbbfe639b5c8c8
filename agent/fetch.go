package agent

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/atollhq/atoll/events"
)

// The fetcher, as Mesos's: before a task starts, each of its app's fetch
// artifacts is downloaded into its sandbox (under destPath, or the URI's
// file name), archives are unpacked there when extract is set, a file
// marked executable gets its x bits, and one marked cache is kept in the
// agent's fetch cache and copied from there the next time. Only http and
// https are fetched (the master refuses the rest; this checks again):
// the agent downloads as itself. Files belong to the task's user, and
// tar archives are unpacked as that user, so an archive can write nothing
// the task could not. The agent writes as itself only into folders with
// no symbolic link on the way, and does so before any tar archive (which
// may hold links) is unpacked: downloads first, then zip files (whose
// links it refuses), then tar archives.

// fetchTimeout bounds one download.
const fetchTimeout = 10 * time.Minute

// fetchArchives are the suffixes unpacked (Marathon's FetchUri.isExtract,
// Mesos's fetcher).
var fetchArchives = []string{".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"}

// fetchAll fetches every artifact into the sandbox: all downloads, then
// the zip files unpacked, then the tar archives (see above).
func (a *Agent) fetchAll(items []events.FetchURI, sandbox string, owner *identity) error {
	dests := make([]string, len(items))
	for i, f := range items {
		dest, err := a.fetchOne(f, sandbox, owner)
		if err != nil {
			return fmt.Errorf("fetch %s: %w", f.URI, err)
		}
		dests[i] = dest
	}
	for _, zipFirst := range []bool{true, false} {
		for i, f := range items {
			if !f.Extract || !isFetchArchive(dests[i]) || strings.HasSuffix(dests[i], ".zip") != zipFirst {
				continue
			}
			if err := a.extract(dests[i], filepath.Dir(dests[i]), sandbox, owner); err != nil {
				return fmt.Errorf("fetch %s: %w", f.URI, err)
			}
		}
	}
	return nil
}

// fetchOne downloads one artifact and returns where it is.
func (a *Agent) fetchOne(f events.FetchURI, sandbox string, owner *identity) (string, error) {
	u, err := url.Parse(f.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("only http and https URIs can be fetched")
	}
	name := f.DestPath
	if name == "" {
		name = path.Base(u.Path)
		if name == "/" || name == "." || name == "" {
			name = u.Host
		}
	}
	dest := filepath.Join(sandbox, filepath.Clean("/"+name))
	if !strings.HasPrefix(dest, sandbox+string(filepath.Separator)) {
		return "", fmt.Errorf("destination %q is outside the sandbox", name)
	}
	if err := mkdirsNoLinks(sandbox, filepath.Dir(dest)); err != nil {
		return "", err
	}
	if f.Cache {
		err = a.fetchCached(u, dest)
	} else {
		err = download(a.fetchContext(), u, dest)
	}
	if err != nil {
		return "", err
	}
	mode := os.FileMode(0o600)
	if f.Executable {
		mode = 0o700
	}
	if err := os.Chmod(dest, mode); err != nil {
		return "", err
	}
	return dest, ownTree(sandbox, dest, owner)
}

// mkdirsNoLinks makes dir and the folders to it below sandbox, refusing
// any symbolic link on the way: the agent writes there as itself.
func mkdirsNoLinks(sandbox, dir string) error {
	rel, err := filepath.Rel(sandbox, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is outside the sandbox", dir)
	}
	p := sandbox
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder (a link?)", strings.TrimPrefix(p, sandbox+"/"))
		}
	}
	return nil
}

// fetchContext is the agent's run, so that a stopping agent gives up its
// downloads.
func (a *Agent) fetchContext() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fetchCtx != nil {
		return a.fetchCtx
	}
	return context.Background()
}

// fetchCached copies the artifact from the agent's fetch cache, filling
// the cache first if it does not hold it.
func (a *Agent) fetchCached(u *url.URL, dest string) error {
	sum := sha256.Sum256([]byte(u.String()))
	dir := filepath.Join(a.cfg.WorkDir, "fetch-cache")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cached := filepath.Join(dir, hex.EncodeToString(sum[:]))
	if _, err := os.Stat(cached); errors.Is(err, os.ErrNotExist) {
		if err := download(a.fetchContext(), u, cached); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return copyFile(cached, dest)
}

// download writes the body of a GET of u to dest, whole or not at all.
func download(ctx context.Context, u *url.URL, dest string) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s", res.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, res.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("download: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ownTree gives the task's user the file and the folders made for it
// below the sandbox.
func ownTree(sandbox, file string, owner *identity) error {
	if owner == nil {
		return nil
	}
	for p := file; p != sandbox && strings.HasPrefix(p, sandbox); p = filepath.Dir(p) {
		if err := os.Lchown(p, int(owner.UID), int(owner.GID)); err != nil {
			return err
		}
	}
	return nil
}

func isFetchArchive(name string) bool {
	for _, s := range fetchArchives {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// extract unpacks an archive into dir: tar archives with tar, as the
// task's user (tar refuses members outside dir); zip files here.
func (a *Agent) extract(archive, dir, sandbox string, owner *identity) error {
	if strings.HasSuffix(archive, ".zip") {
		return unzip(archive, dir, sandbox, owner)
	}
	cmd := exec.CommandContext(a.fetchContext(), "tar", "-C", dir, "--no-same-owner", "--no-same-permissions", "-xf", archive)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.users.credential(owner)}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("extract %s: %v: %s", filepath.Base(archive), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unzip unpacks regular files and folders of a zip into dir; a member
// that would land outside dir, or is anything else (a symlink), fails it.
func unzip(archive, dir, sandbox string, owner *identity) error {
	r, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("extract %s: %w", filepath.Base(archive), err)
	}
	defer r.Close()
	for _, f := range r.File {
		dest := filepath.Join(dir, filepath.Clean("/"+f.Name))
		if !strings.HasPrefix(dest, dir+string(filepath.Separator)) {
			return fmt.Errorf("extract %s: %q is outside the sandbox", filepath.Base(archive), f.Name)
		}
		switch mode := f.Mode(); {
		case mode.IsDir():
			if err := mkdirsNoLinks(sandbox, dest); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := mkdirsNoLinks(sandbox, filepath.Dir(dest)); err != nil {
				return err
			}
			if err := unzipFile(f, dest, mode.Perm()&0o700|0o600); err != nil {
				return fmt.Errorf("extract %s: %s: %w", filepath.Base(archive), f.Name, err)
			}
		default:
			return fmt.Errorf("extract %s: %q is neither a file nor a folder", filepath.Base(archive), f.Name)
		}
		if err := ownTree(dir, dest, owner); err != nil {
			return err
		}
	}
	return nil
}

func unzipFile(f *zip.File, dest string, mode os.FileMode) error {
	in, err := f.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
