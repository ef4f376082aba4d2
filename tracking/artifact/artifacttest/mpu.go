// Package artifacttest holds test helpers that speak MLflow's proxied
// artifact protocol the way MLflow's Python client does.
package artifacttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
)

// Credential is one part URL of mpu/create's answer.
type Credential struct {
	URL        string            `json:"url"`
	PartNumber int               `json:"part_number"`
	Headers    map[string]string `json:"headers"`
}

// CreateResponse is mpu/create's answer.
type CreateResponse struct {
	UploadID    string       `json:"upload_id"`
	Credentials []Credential `json:"credentials"`
}

// PartResult is one part as mpu/complete takes it.
type PartResult struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
	URL        string `json:"url"`
}

// Post sends a JSON POST and decodes a 200 answer into out; any other
// status is returned as an error carrying the body.
func Post(c *http.Client, u string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := c.Post(u, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Code: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// StatusError is a non-200 answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// Create calls mpu/create for dir (an artifact directory such as
// "1/abc/artifacts") and the client-side file name local.
func Create(c *http.Client, base, dir, local string, numParts int) (*CreateResponse, error) {
	var cr CreateResponse
	err := Post(c, base+"/api/2.0/mlflow-artifacts/mpu/create/"+escape(dir),
		map[string]any{"path": local, "num_parts": numParts}, &cr)
	return &cr, err
}

// PutPart PUTs one part to its credential URL with a plain client and no
// credentials, as MLflow's client does with requests.put, and returns the
// ETag the server answered.
func PutPart(cred Credential, data []byte) (string, error) {
	req, err := http.NewRequest(http.MethodPut, cred.URL, bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	for k, v := range cred.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", &StatusError{Code: resp.StatusCode, Body: string(b)}
	}
	return resp.Header.Get("ETag"), nil
}

// Upload does what MLflow's HttpArtifactRepository._try_multipart_upload
// does: create, PUT the parts (partSize bytes each, in parallel) to the
// returned URLs, then complete with the ETags, or abort on failure.
func Upload(c *http.Client, base, dir, local string, data []byte, partSize int) error {
	n := (len(data) + partSize - 1) / partSize
	if n == 0 {
		n = 1
	}
	cr, err := Create(c, base, dir, local, n)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if len(cr.Credentials) != n {
		return fmt.Errorf("create: %d credentials for %d parts", len(cr.Credentials), n)
	}
	var (
		mu    sync.Mutex
		parts []PartResult
		errs  []error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 4)
	)
	for i, cred := range cr.Credentials {
		start := i * partSize
		chunk := data[start:min(start+partSize, len(data))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			etag, err := PutPart(cred, chunk)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			parts = append(parts, PartResult{PartNumber: cred.PartNumber, ETag: etag, URL: cred.URL})
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		_ = Abort(c, base, dir, local, cr.UploadID)
		return fmt.Errorf("part upload: %w", errs[0])
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	return Complete(c, base, dir, local, cr.UploadID, parts)
}

// Complete calls mpu/complete.
func Complete(c *http.Client, base, dir, local, uploadID string, parts []PartResult) error {
	return Post(c, base+"/api/2.0/mlflow-artifacts/mpu/complete/"+escape(dir),
		map[string]any{"path": local, "upload_id": uploadID, "parts": parts}, nil)
}

// Abort calls mpu/abort.
func Abort(c *http.Client, base, dir, local, uploadID string) error {
	return Post(c, base+"/api/2.0/mlflow-artifacts/mpu/abort/"+escape(dir),
		map[string]any{"path": local, "upload_id": uploadID}, nil)
}

func escape(p string) string { return (&url.URL{Path: p}).EscapedPath() }
