// Package templates will hold the embedded default HAProxy templates, named
// as marathon-lb's (HAPROXY_HEAD, HAPROXY_BACKEND_HEAD, ...). See DESIGN.md §6.
package templates
