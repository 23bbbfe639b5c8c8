package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// User is a resolved container user.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

// ResolveUser finds user ("name", "uid", "name:group", "uid:gid", "" for
// root) in the image's /etc/passwd and /etc/group, read inside rootfs
// (symlinks in the image resolve inside it, never on the host). A numeric
// uid needs no passwd entry, as in docker.
func ResolveUser(rootfs, user string) (User, error) {
	if user == "" {
		user = "0"
	}
	name, group, hasGroup := strings.Cut(user, ":")
	passwd, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return User{}, fmt.Errorf("user %q: %w", user, err)
	}
	u := User{Home: "/"}
	found := false
	userName := "" // the passwd entry's name, for supplementary groups
	uidNum, numeric := parseID(name)
	for _, f := range colonLines(passwd) {
		if len(f) < 7 {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		if f[0] == name || (numeric && uid == uidNum) {
			u.UID, u.GID, u.Home, found, userName = uid, gid, f[5], true, f[0]
			break
		}
	}
	if !found {
		if !numeric {
			return User{}, fmt.Errorf("user %q not found in the image's /etc/passwd", name)
		}
		u.UID, u.GID = uidNum, uidNum
		if uidNum == 0 {
			u.Home = "/root"
		}
	}
	groups, err := readInRoot(rootfs, "/etc/group")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return User{}, fmt.Errorf("user %q: %w", user, err)
	}
	if hasGroup {
		gid, ok := parseID(group)
		if !ok {
			for _, f := range colonLines(groups) {
				if len(f) >= 3 && f[0] == group {
					if g, ok2 := parseID(f[2]); ok2 {
						gid, ok = g, true
					}
					break
				}
			}
			if !ok {
				return User{}, fmt.Errorf("group %q not found in the image's /etc/group", group)
			}
		}
		u.GID = gid
	}
	// Supplementary groups that list the user by name, as login does.
	for _, f := range colonLines(groups) {
		if len(f) < 4 || userName == "" {
			continue
		}
		if slices.Contains(strings.Split(f[3], ","), userName) {
			if g, ok := parseID(f[2]); ok && g != u.GID {
				u.AdditionalGids = append(u.AdditionalGids, g)
			}
		}
	}
	return u, nil
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func colonLines(b []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// readInRoot reads a file of the image with every path component,
// symlinks included, resolved inside rootfs (openat2's RESOLVE_IN_ROOT).
func readInRoot(rootfs, name string) ([]byte, error) {
	dirfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, os.ErrNotExist
		}
		return nil, fmt.Errorf("open %s in the image: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}
