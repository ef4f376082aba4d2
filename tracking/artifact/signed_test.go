package artifact

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSignedDownloadsNeedSigner: a store that cannot sign URLs (local
// disk) is refused, and without the wrapper big files stream as before.
func TestSignedDownloadsNeedSigner(t *testing.T) {
	l, _ := newLocal(t)
	if _, err := WithSignedDownloads(context.Background(), l, SignedDownloads{MinSize: 1}); err == nil || !strings.Contains(err.Error(), "cannot sign URLs") {
		t.Fatalf("WithSignedDownloads(local) = %v", err)
	}
	if err := l.Put(context.Background(), "a/big.bin", strings.NewReader(strings.Repeat("x", 4096))); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := ServeFile(rec, httptest.NewRequest(http.MethodGet, "/x", nil), l, "a/big.bin"); err != nil || rec.Code != 200 {
		t.Fatalf("ServeFile = %d %v", rec.Code, err)
	}
	if b, _ := io.ReadAll(rec.Body); len(b) != 4096 {
		t.Fatalf("streamed %d bytes", len(b))
	}
}
