package copystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/storecopy"
)

// boltAuthBuckets are the gateway's buckets in a bbolt store file, by
// record kind, users first.
var boltAuthBuckets = []struct {
	name string
	kind storecopy.AuthKind
}{
	{"auth.users", storecopy.AuthUser},
	{"auth.tokens", storecopy.AuthToken},
	{"auth.experiment_permissions", storecopy.AuthGrant},
	{"auth.registered_model_permissions", storecopy.AuthGrant},
	{"auth.sessions", storecopy.AuthSession},
}

// boltAuth streams the gateway's state of a bbolt store file as its raw
// key/value pairs: between two bbolt files this copies users, password
// and token hashes, grants and sessions byte for byte.
type boltAuth struct{ db *bolt.DB }

// boltAuthRecord is one key/value pair of a gateway bucket.
type boltAuthRecord struct {
	bucket     string
	key, value []byte
}

// IsEmpty implements storecopy.AuthStream.
func (b boltAuth) IsEmpty(ctx context.Context) (bool, error) {
	empty := true
	err := b.db.View(func(tx *bolt.Tx) error {
		if u := tx.Bucket([]byte("auth.users")); u != nil {
			k, _ := u.Cursor().First()
			empty = k == nil
		}
		return nil
	})
	return empty, err
}

// Each implements storecopy.AuthStream, in one read transaction.
func (b boltAuth) Each(ctx context.Context, fn func(storecopy.AuthKind, any) error) error {
	return b.db.View(func(tx *bolt.Tx) error {
		for _, ab := range boltAuthBuckets {
			bk := tx.Bucket([]byte(ab.name))
			if bk == nil {
				continue
			}
			c := bk.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if err := ctx.Err(); err != nil {
					return err
				}
				if v == nil {
					return fmt.Errorf("unexpected nested bucket %q in %s", k, ab.name)
				}
				rec := boltAuthRecord{bucket: ab.name, key: bytes.Clone(k), value: bytes.Clone(v)}
				if err := fn(ab.kind, rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Put implements storecopy.AuthStream for records of another boltAuth.
func (b boltAuth) Put(ctx context.Context, kind storecopy.AuthKind, rec any) error {
	r, ok := rec.(boltAuthRecord)
	if !ok {
		return errors.New("copying the gateway's state between these two kinds of store is not supported")
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists([]byte(r.bucket))
		if err != nil {
			return err
		}
		return bk.Put(r.key, r.value)
	})
}
