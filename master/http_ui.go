package master

import (
	"net/http"

	"github.com/atollhq/atoll/master/ui"
)

// The web UI at /ui/ (master/ui): static files that use the public API
// like any other client, so the master needs no UI-specific endpoint.

// registerUI mounts the UI on mux: /ui/ serves the files, /ui redirects
// there so that relative links in the page resolve under /ui/.
func registerUI(mux *http.ServeMux) {
	files := http.StripPrefix("/ui", ui.Handler())
	mux.Handle("/ui/", methods{"GET": files.ServeHTTP})
	mux.Handle("/ui", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	}})
}
