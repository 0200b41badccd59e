package server

import (
	"net/http"
	"path"
	"strings"
)

// Route sends the revalidate API (apiPath and everything under it, in any
// spelling that cleans to it) to api and every other request to pages, as
// they are. A ServeMux is not used: it would clean and redirect page paths
// that the origin must receive as they are.
func Route(apiPath string, api, pages http.Handler) http.Handler {
	isAPI := func(p string) bool { return p == apiPath || strings.HasPrefix(p, apiPath+"/") }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == apiPath {
			api.ServeHTTP(w, r)
			return
		}
		// A CMS with a trailing slash in its base URL calls
		// //api/revalidate: as nginx (merge_slashes, dot segments) would,
		// that is the API, never a page request that carries the secret
		// to the origin and answers 200 without revalidating anything.
		clean := path.Clean(r.URL.Path)
		if !isAPI(clean) {
			pages.ServeHTTP(w, r)
			return
		}
		if clean != r.URL.Path {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = clean, ""
			r2.URL = &u
			r = &r2
		}
		api.ServeHTTP(w, r)
	})
}

// Purge sends PURGE and BAN, on any path, to purge and everything else to
// next: the cache plugins of a CMS send them to the cache, which answers
// them itself (README.md#cms-plugins). They never reach the origin.
func Purge(purge, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PURGE" || r.Method == "BAN" {
			purge.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
