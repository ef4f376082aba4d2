package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// MaxPasswordBytes is the longest password bcrypt uses. Longer passwords are
// refused rather than silently truncated.
const MaxPasswordBytes = 72

// Defaults for BasicOptions.
const (
	DefaultBasicCacheSize = 4096
	DefaultBasicCacheTTL  = 5 * time.Minute
)

// BasicOptions configures a Basic authenticator. The zero value is usable.
type BasicOptions struct {
	// CacheSize bounds the verified-credential cache (entries). Zero means
	// DefaultBasicCacheSize; negative disables the cache.
	CacheSize int
	// CacheTTL is how long a verified credential is remembered. Zero means
	// DefaultBasicCacheTTL.
	CacheTTL time.Duration
	// FakeHashCost is the bcrypt cost of the hash compared for unknown
	// users, so that they take as long as known ones. Set it to the cost the
	// store uses. Zero means bcrypt.DefaultCost.
	FakeHashCost int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// Basic verifies HTTP Basic credentials against bcrypt hashes from a
// UserSource. It is safe for concurrent use.
type Basic struct {
	users    UserSource
	cache    *credCache // nil when disabled
	fakeHash []byte
	now      func() time.Time
	compare  func(hash, password []byte) error // bcrypt; replaced in tests to count calls
}

// NewBasic returns a Basic authenticator backed by users.
func NewBasic(users UserSource, opts BasicOptions) (*Basic, error) {
	if users == nil {
		return nil, errors.New("authn: Basic needs a UserSource")
	}
	if opts.FakeHashCost == 0 {
		opts.FakeHashCost = bcrypt.DefaultCost
	}
	if opts.FakeHashCost < bcrypt.MinCost || opts.FakeHashCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("authn: fake hash cost %d out of range", opts.FakeHashCost)
	}
	// The fake hash is of a random password nobody knows, so it can never
	// match, and it is generated at the configured cost so that an unknown
	// user costs one real bcrypt comparison.
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, fmt.Errorf("authn: generating fake hash: %w", err)
	}
	fake, err := bcrypt.GenerateFromPassword(secret[:], opts.FakeHashCost)
	if err != nil {
		return nil, fmt.Errorf("authn: generating fake hash: %w", err)
	}
	b := &Basic{users: users, fakeHash: fake, now: opts.Now, compare: bcrypt.CompareHashAndPassword}
	if b.now == nil {
		b.now = time.Now
	}
	if opts.CacheSize >= 0 {
		if opts.CacheSize == 0 {
			opts.CacheSize = DefaultBasicCacheSize
		}
		if opts.CacheTTL <= 0 {
			opts.CacheTTL = DefaultBasicCacheTTL
		}
		if b.cache, err = newCredCache(opts.CacheSize, opts.CacheTTL); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Authenticate verifies username and password. It returns a Principal with
// MethodBasic, an error wrapping ErrInvalidCredentials, or (for a lookup
// failure in the UserSource) another error. Unknown users, users without a
// password and disabled users cost the same bcrypt comparison as a wrong
// password.
func (b *Basic) Authenticate(ctx context.Context, username, password string) (*Principal, error) {
	if username == "" {
		return nil, invalid("basic: empty username")
	}
	if len(password) > MaxPasswordBytes {
		return nil, invalid("basic: password longer than 72 bytes")
	}
	u, err := b.users.LookupUser(ctx, username)
	if errors.Is(err, ErrNotFound) {
		b.fakeCompare(password)
		return nil, invalid("basic: unknown user")
	}
	if err != nil {
		return nil, fmt.Errorf("authn: basic: looking up user: %w", err)
	}
	if len(u.PasswordHash) == 0 {
		b.fakeCompare(password)
		return nil, invalid("basic: user has no password")
	}
	name := u.Name
	if name == "" {
		name = username
	}

	now := b.now()
	hashSum := sha256.Sum256(u.PasswordHash)
	var key [32]byte
	verified := false
	if b.cache != nil {
		key = b.cache.cacheKey(username, password)
		verified = b.cache.hit(key, hashSum, now)
	}
	if !verified {
		switch err := b.compare(u.PasswordHash, []byte(password)); {
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return nil, invalid("basic: wrong password")
		case err != nil:
			// The bcrypt error may quote bytes of the stored hash; keep it out.
			return nil, invalid("basic: stored password hash is unusable")
		}
		if b.cache != nil {
			b.cache.add(key, hashSum, now)
		}
	}
	if u.Disabled {
		return nil, invalid("basic: user disabled")
	}
	return &Principal{Username: name, Method: MethodBasic}, nil
}

// Purge empties the verified-credential cache. Password changes do not need
// it (the cache checks the current hash); use it after bulk changes such as
// disabling many users, or on reload.
func (b *Basic) Purge() {
	if b.cache != nil {
		b.cache.purge()
	}
}

func (b *Basic) fakeCompare(password string) {
	_ = b.compare(b.fakeHash, []byte(password))
}

// HashPassword returns the bcrypt hash of password for storing in a user
// record. cost below bcrypt.DefaultCost is raised to it; passwords longer
// than MaxPasswordBytes and empty passwords are refused.
func HashPassword(password string, cost int) ([]byte, error) {
	if password == "" {
		return nil, errors.New("authn: empty password")
	}
	if len(password) > MaxPasswordBytes {
		return nil, fmt.Errorf("authn: password longer than %d bytes", MaxPasswordBytes)
	}
	cost = max(cost, bcrypt.DefaultCost)
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("authn: hashing password: %w", err)
	}
	return h, nil
}
