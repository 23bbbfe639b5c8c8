// Package lbsync will keep one HAProxy per node in line with the cluster
// state, from an events follower or a Marathon /v2/events stream. See
// DESIGN.md §6; it is built by its own issue.
package lbsync
