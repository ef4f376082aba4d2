package artifact

import (
	"path"
	"strings"
)

// textTypes are the extensions (or whole names) MLflow serves as
// text/plain (mlflow/utils/mime_type_utils.py get_text_extensions).
var textTypes = map[string]bool{
	"txt": true, "log": true, "err": true, "cfg": true, "conf": true, "cnf": true, "cf": true,
	"ini": true, "properties": true, "prop": true, "hocon": true, "toml": true, "yaml": true,
	"yml": true, "xml": true, "json": true, "js": true, "py": true, "py3": true, "csv": true,
	"tsv": true, "md": true, "rst": true, "MLmodel": true, "mlproject": true,
}

// mediaTypes is a fixed extension table after Python's built-in mimetypes
// map, so that answers do not depend on the host's mime.types files.
var mediaTypes = map[string]string{
	".html": "text/html", ".htm": "text/html", ".css": "text/css", ".txt": "text/plain",
	".csv": "text/csv", ".json": "application/json", ".js": "text/javascript",
	".xml": "text/xml", ".md": "text/markdown", ".py": "text/x-python", ".c": "text/plain",
	".h": "text/plain", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
	".gif": "image/gif", ".svg": "image/svg+xml", ".webp": "image/webp", ".bmp": "image/bmp",
	".ico": "image/vnd.microsoft.icon", ".tif": "image/tiff", ".tiff": "image/tiff",
	".pdf": "application/pdf", ".zip": "application/zip", ".tar": "application/x-tar",
	".mp4": "video/mp4", ".mpeg": "video/mpeg", ".mp3": "audio/mpeg", ".wav": "audio/x-wav",
	".sh": "application/x-sh", ".wasm": "application/wasm",
}

// suffixMap and encodings follow Python's mimetypes: ".tgz" is ".tar.gz",
// and a compression suffix is an encoding, not a type ("x.gz" has no type,
// "x.tar.gz" is application/x-tar).
var (
	suffixMap = map[string]string{".svgz": ".svg.gz", ".tgz": ".tar.gz", ".taz": ".tar.gz",
		".tz": ".tar.gz", ".tbz2": ".tar.bz2", ".txz": ".tar.xz"}
	encodings = map[string]bool{".gz": true, ".Z": true, ".bz2": true, ".xz": true, ".br": true}
)

// ContentType guesses a download's media type from its name as MLflow's
// _guess_mime_type does: text/plain for the text extensions (or names
// such as MLmodel), then Python's mimetypes table, else
// application/octet-stream.
func ContentType(name string) string {
	base := path.Base(name)
	ext := strings.TrimPrefix(path.Ext(base), ".")
	if ext == "" {
		ext = base
	}
	if textTypes[ext] {
		return "text/plain"
	}
	e := path.Ext(base)
	stem := strings.TrimSuffix(base, e)
	for {
		full, ok := suffixMap[strings.ToLower(e)]
		if !ok {
			break
		}
		stem += full
		e = path.Ext(stem)
		stem = strings.TrimSuffix(stem, e)
	}
	if encodings[e] || encodings[strings.ToLower(e)] {
		e = path.Ext(stem)
	}
	if t, ok := mediaTypes[strings.ToLower(e)]; ok {
		return t
	}
	return "application/octet-stream"
}
