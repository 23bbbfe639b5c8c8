package master

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/atollhq/atoll/events"
)

// Marathon's fetch (artifact.raml) and its deprecated uris: what the agent
// downloads into a task's sandbox before the task starts. Only http and
// https are fetched: the agent downloads as itself, so a file:// URI would
// let an app copy any file the agent can read into its sandbox.

// fetch reads a fetch array with Marathon's defaults: extract true,
// executable and cache false.
func (r *reader) fetch(p string, raw json.RawMessage) ([]events.FetchURI, bool) {
	return each(r, p, raw, func(p string, raw json.RawMessage) (events.FetchURI, bool) {
		obj, ok := r.object(p, raw)
		if !ok {
			return events.FetchURI{}, false
		}
		f := events.FetchURI{Extract: true}
		good := opt(r, obj, p, "uri", &f.URI, r.str)
		good = opt(r, obj, p, "extract", &f.Extract, r.boolean) && good
		good = opt(r, obj, p, "executable", &f.Executable, r.boolean) && good
		good = opt(r, obj, p, "cache", &f.Cache, r.boolean) && good
		good = opt(r, obj, p, "destPath", &f.DestPath, r.str) && good
		if _, has := obj["uri"]; !has && good {
			r.fail(p+"/uri", errPathMissing)
			good = false
		}
		return f, good
	})
}

// archiveSuffixes are what Marathon's FetchUri.isExtract takes for
// archives when it turns uris into fetch.
var archiveSuffixes = []string{".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"}

// fetchOfURIs is uris as Marathon turns them into fetch.
func fetchOfURIs(uris []string) []events.FetchURI {
	out := make([]events.FetchURI, len(uris))
	for i, u := range uris {
		out[i] = events.FetchURI{URI: u, Extract: isArchive(u)}
	}
	return out
}

// isArchive says whether a URI names an archive the fetcher unpacks.
func isArchive(uri string) bool {
	p := uri
	if u, err := url.Parse(uri); err == nil {
		p = u.Path
	}
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

const (
	msgFetchWithURIs  = "may not be set in conjunction with fetch"
	msgURISyntax      = "URI has invalid syntax."
	msgFetchScheme    = "only http and https URIs can be fetched: the agent downloads as itself"
	msgDestPath       = "must be a file name in the sandbox (a relative path without '..')"
	maxFetchURILength = 1024
)

// validateFetch checks each artifact: a URI the agent can fetch, and a
// destination inside the sandbox.
func validateFetch(errs *fieldErrs, fetch []events.FetchURI) {
	for i, f := range fetch {
		p := fmt.Sprintf("/fetch(%d)", i)
		u, err := url.Parse(f.URI)
		switch {
		case f.URI == "" || len(f.URI) > maxFetchURILength || err != nil || u.Scheme == "":
			errs.add(p+"/uri", msgURISyntax)
		case u.Scheme != "http" && u.Scheme != "https":
			errs.add(p+"/uri", msgFetchScheme)
		case u.Host == "":
			errs.add(p+"/uri", msgURISyntax)
		}
		if d := f.DestPath; d != "" {
			clean := path.Clean(d)
			if strings.HasPrefix(d, "/") || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || len(d) > maxFetchURILength {
				errs.add(p+"/destPath", msgDestPath)
			}
		}
	}
}
