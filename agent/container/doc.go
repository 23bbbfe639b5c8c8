// Package container runs a task from an image with an OCI runtime (runc):
// spec.go turns the image's config and the app's fields into an OCI
// runtime spec (pure), user.go reads the image's users, runtime.go drives
// runc (start, state, kill, delete, adopt). The image and its root
// filesystem come from agent/imagestore.
//
// Who may use what: the runtime's --root state folder and the bundles are
// the agent's (root, 0700); a task sees only its root filesystem, its
// sandbox (at /mnt/mesos/sandbox, as Mesos mounts it) and the volumes its
// app names.
package container
