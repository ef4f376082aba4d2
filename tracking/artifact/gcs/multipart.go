package gcs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/caddy-mlflow/caddy-mlflow/tracking"
	"github.com/caddy-mlflow/caddy-mlflow/tracking/artifact"
)

// Multipart uploads are staged as temporary objects under
// "<prefix>.mlflow-upload-mpu/<upload>/": a marker object "upload" written
// by CreateUpload, and one object "p-<n>" per part. CompleteParts composes
// the parts (32 at a time, in a tree for more) into the target object,
// which appears atomically, then deletes the staging objects. Listings
// never show the staging prefix and no artifact path can name it.
const stagingDir = artifact.ReservedPrefix + "mpu"

// maxCompose is the most source objects one GCS compose request takes.
const maxCompose = 32

var _ artifact.Multipart = (*Store)(nil)

func (s *Store) stagePrefix(upload string) string {
	return s.prefix + stagingDir + "/" + upload + "/"
}

// CreateUpload implements artifact.Multipart.
func (s *Store) CreateUpload(ctx context.Context, upload string) error {
	_, err := s.write(ctx, s.stagePrefix(upload)+"upload", strings.NewReader(""), nil)
	return err
}

// PutPart implements artifact.Multipart: the part streams into its own
// staging object; its ETag is the object's MD5.
func (s *Store) PutPart(ctx context.Context, upload string, part int, r io.Reader) (string, error) {
	defer artifact.Track(s.stagingKey(upload))()
	pre := s.stagePrefix(upload)
	if _, err := s.bucket.Object(pre + "upload").Attrs(ctx); err != nil {
		if errors.Is(err, storage.ErrObjectNotExist) {
			return "", fmt.Errorf("gcs: multipart upload: %w", artifact.ErrNotFound)
		}
		return "", fmt.Errorf("gcs: multipart upload: %w", err)
	}
	attrs, err := s.write(ctx, pre+"p-"+strconv.Itoa(part), r, nil)
	if err != nil {
		return "", err
	}
	return partETag(attrs), nil
}

// partETag is the ETag of a staged part: its MD5, or its generation when
// the server reported no MD5.
func partETag(a *storage.ObjectAttrs) string {
	if len(a.MD5) > 0 {
		return hex.EncodeToString(a.MD5)
	}
	return "g" + strconv.FormatInt(a.Generation, 10)
}

// CompleteParts implements artifact.Multipart.
func (s *Store) CompleteParts(ctx context.Context, upload, p string, parts []artifact.Part) error {
	if reserved(p) {
		return errInvalidPath()
	}
	defer artifact.Track(s.stagingKey(upload))()
	pre := s.stagePrefix(upload)
	staged := map[string]*storage.ObjectAttrs{}
	it := s.bucket.Objects(ctx, &storage.Query{Prefix: pre, Projection: storage.ProjectionNoACL})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return fmt.Errorf("gcs: list parts: %w", err)
		}
		staged[strings.TrimPrefix(a.Name, pre)] = a
	}
	if staged["upload"] == nil {
		return fmt.Errorf("gcs: multipart upload: %w", artifact.ErrNotFound)
	}
	srcs := make([]*storage.ObjectHandle, 0, len(parts))
	for _, pt := range parts {
		a := staged["p-"+strconv.Itoa(pt.Number)]
		if a == nil || partETag(a) != pt.ETag {
			return tracking.Errorf(tracking.InvalidParameterValue,
				"Part %d was not uploaded or its ETag %q does not match", pt.Number, pt.ETag)
		}
		srcs = append(srcs, s.bucket.Object(a.Name).Generation(a.Generation))
	}
	// Compose in rounds until one request can take what is left.
	for round := 0; len(srcs) > maxCompose; round++ {
		next := make([]*storage.ObjectHandle, 0, (len(srcs)+maxCompose-1)/maxCompose)
		for i := 0; i < len(srcs); i += maxCompose {
			group := srcs[i:min(i+maxCompose, len(srcs))]
			dst := s.bucket.Object(fmt.Sprintf("%sc-%d-%d", pre, round, i/maxCompose))
			a, err := dst.ComposerFrom(group...).Run(ctx)
			if err != nil {
				return fmt.Errorf("gcs: compose parts: %w", err)
			}
			next = append(next, dst.Generation(a.Generation))
		}
		srcs = next
	}
	name := s.object(p)
	c := s.bucket.Object(name).ComposerFrom(srcs...)
	c.ContentType = artifact.ContentType(name)
	if _, err := c.Run(ctx); err != nil {
		return fmt.Errorf("gcs: compose: %w", err)
	}
	return s.deletePrefix(ctx, pre)
}

// AbortParts implements artifact.Multipart.
func (s *Store) AbortParts(ctx context.Context, upload string) error {
	return s.deletePrefix(ctx, s.stagePrefix(upload))
}
