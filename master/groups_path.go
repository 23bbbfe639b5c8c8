package master

import (
	"errors"
	"fmt"
	"strings"
)

// Group and app paths, as Marathon's PathId has them: absolute ids made of
// segments, with groups as the prefixes of the ids below them.

// rootGroupID is the root group's id; every app and group is below it.
const rootGroupID = "/"

// parentOf is the group an id lives in: "/a/b/c" lives in "/a/b", "/a"
// in the root.
func parentOf(id string) string {
	i := strings.LastIndex(id, "/")
	if i <= 0 {
		return rootGroupID
	}
	return id[:i]
}

// isUnder reports whether id is below group (not the group itself).
func isUnder(id, group string) bool {
	if group == rootGroupID {
		return id != rootGroupID
	}
	return strings.HasPrefix(id, group+"/")
}

// ancestorsOf lists the groups id lives in, nearest first, the root last.
func ancestorsOf(id string) []string {
	var out []string
	for id != rootGroupID {
		id = parentOf(id)
		out = append(out, id)
	}
	return out
}

// resolvePath makes raw absolute against base, as Marathon's
// PathId.canonicalPath does: a relative id ("db", "../db") is taken from
// the group base; "." and ".." segments are resolved. A ".." above the
// root stays in the result, for validation to refuse.
func resolvePath(base, raw string) string {
	if strings.HasPrefix(raw, "/") {
		base = ""
	}
	var segs []string
	for _, s := range strings.Split(base+"/"+raw, "/") {
		switch {
		case s == "" || s == ".":
		case s == ".." && len(segs) > 0 && segs[len(segs)-1] != "..":
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
		}
	}
	return "/" + strings.Join(segs, "/")
}

// resolveDependencies makes an app's dependencies absolute against its
// group, as Marathon normalizes them; none is nil.
func resolveDependencies(appID string, deps []string) []string {
	if len(deps) == 0 {
		return nil
	}
	out := make([]string, 0, len(deps))
	for _, d := range deps {
		out = append(out, resolvePath(parentOf(appID), d))
	}
	return out
}

// validateDependencies checks that each dependency is a well-formed id,
// as Marathon's AppDefinition validator does; whether it names an app or
// a group is not checked (Marathon orders by the ones that exist).
func validateDependencies(errs *fieldErrs, deps []string) {
	for i, d := range deps {
		if _, bad := normalizeAppID(d); len(bad) > 0 {
			errs.add(fmtPath("/dependencies", i), bad...)
		}
	}
}

// fmtPath is Marathon's path of element i of an array: "/apps(0)".
func fmtPath(path string, i int) string { return fmt.Sprintf("%s(%d)", path, i) }

// asError is errors.As.
func asError[T error](err error, target *T) bool { return errors.As(err, target) }
