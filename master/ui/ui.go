// Package ui is atoll's web UI: static files embedded in the binary and
// served by the master under /ui/. The page is plain HTML, one CSS file
// and one ES module: no build step, nothing to install. It reads only the
// public API (/v2/*, /master/state) and follows /v2/events, so it works
// the same against any master, leader or standby.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Static is the UI's file tree (index.html, app.js, style.css).
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree always has "static"
	}
	return sub
}

// Handler serves the UI files at the root of its own path space: mount it
// with http.StripPrefix. Responses say no-cache so that a browser picks up
// a new master's UI at once (the files are small; ETags are not kept by
// embed.FS, which has no modification times).
func Handler() http.Handler {
	fsrv := http.FileServerFS(Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The UI runs same-origin only; nothing may frame it.
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		fsrv.ServeHTTP(w, r)
	})
}
