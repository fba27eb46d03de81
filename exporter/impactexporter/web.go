package impactexporter

import (
	"embed"
	"net/http"
)

// webFiles is a small web page over the API: the newest incidents, refreshed by the stream.
//
//go:embed web
var webFiles embed.FS

// webAssets are the page's files, each with its route and the type it is served as. The types are
// spelled here rather than looked up by extension, which the host's mime.types may override.
var webAssets = []struct{ route, file, contentType string }{
	{"/", "web/index.html", "text/html; charset=utf-8"},
	{"/app.js", "web/app.js", "text/javascript; charset=utf-8"},
	{"/style.css", "web/style.css", "text/css; charset=utf-8"},
}

// webAsset serves one of the page's files.
func webAsset(file, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		// With the type given, browsers are told not to guess another one.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeFileFS(w, r, webFiles, file)
	}
}
