// Package deploy holds what operators run atoll with: example app
// definitions (embedded, so `atoll dev --demo` needs no files on disk),
// and, as they land, systemd units and the multi-region lab.
package deploy

import _ "embed"

// EchoApp is deploy/examples/echo.json: the demo app of `atoll dev --demo`.
//
//go:embed examples/echo.json
var EchoApp []byte
