// Command recordproxy records conformance transcripts: a reverse proxy
// (replay.Recorder) between an MLflow client and a tracking server that
// appends one line per exchange to a .jsonl file. A scenario labels its
// steps by posting the label to /__step on the proxy.
//
//	go run ./tracking/api/replay/recordproxy -listen 127.0.0.1:5001 \
//		-upstream http://127.0.0.1:5000 -out scenario.jsonl
//
// testdata/conformance-mlflow3/README.md shows a full recording session.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/url"
	"os"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/api/replay"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5001", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:5000", "tracking server to forward to")
	out := flag.String("out", "transcript.jsonl", "transcript file to append to")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	rec := &replay.Recorder{Upstream: u, Out: f}
	log.Printf("recording %s -> %s into %s", *listen, u, *out)
	log.Fatal(http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.ServeHTTP(w, r)
		if err := rec.Err(); err != nil {
			log.Fatal(err)
		}
	})))
}
