// Package imagestore pulls container images from registries without a
// Docker daemon and keeps them on the agent's disk for its tasks.
//
// What it does, as Mesos's docker store and containerd do:
//   - references in Docker's syntax ("nginx" is
//     index.docker.io/library/nginx:latest; tags and digests);
//   - credentials per registry from a Docker-style config file the agent
//     is given (root-only, mode 0600), and plain HTTP only to loopback
//     registries and those listed as insecure, as dockerd;
//   - a content-addressed layer cache shared by every task: each layer is
//     unpacked once, by the sha256 of its uncompressed tar (its diff id),
//     after both its blob digest and its diff id are checked; concurrent
//     pulls of one layer download it once;
//   - a per-task root filesystem that is an overlay of the cached layers
//     (the task's writes go to its own upper directory), docker's
//     whiteouts turned into overlayfs's when a layer is unpacked;
//   - garbage collection of images no task uses and of layers no image
//     references, after a delay.
//
// On-disk layout under the store's root (0700, the agent's alone: layers
// may hold secrets baked into images):
//
//	layers/sha256/<diff id>/   an unpacked layer, an overlay lower dir
//	images/<manifest digest>.json   an image: its config and layer ids
//	refs/<sha256 of the reference>.json   which image a reference named when pulled
//	leases/<task id>.json   an image a task's root filesystem uses
//	tmp/   downloads under way
package imagestore
