// Package deploy holds what operators run atoll with: example app
// definitions (embedded, so `atoll dev --demo` needs no files on disk),
// next to the systemd units (systemd/), the three-region example configs
// (examples/three-regions/) and the network-namespace lab (lab/).
package deploy

import _ "embed"

// EchoApp is deploy/examples/echo.json: the demo app of `atoll dev --demo`.
//
//go:embed examples/echo.json
var EchoApp []byte
