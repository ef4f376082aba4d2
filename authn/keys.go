package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
)

// MinRSABits is the smallest RSA modulus accepted for JWT verification.
const MinRSABits = 2048

// Key is a JWT verification key with the one algorithm it may verify. The
// algorithm comes from configuration (or the JWKS entry), never from a token.
type Key struct {
	// ID is the key ID (kid). A Key with an empty ID matches tokens with any
	// or no kid; one with an ID matches only tokens with that kid, or
	// without a kid.
	ID string
	// Alg is the JWS algorithm (HS256, RS256, PS256, ES256, EdDSA, ...).
	Alg string
	// Key is []byte for HS*, *rsa.PublicKey for RS*/PS*, *ecdsa.PublicKey
	// for ES*, ed25519.PublicKey for EdDSA.
	Key any
}

// KeySet supplies verification keys for a kid. Implementations: StaticKeys
// and *RemoteJWKS.
type KeySet interface {
	// Keys returns the keys that may verify a token with this kid (empty
	// kid: all keys). It may return no keys and no error.
	Keys(ctx context.Context, kid string) ([]Key, error)
	// Algorithms lists every algorithm Keys may ever return a key for.
	Algorithms() []string
}

// StaticKeys is a fixed KeySet (an HMAC secret, PEM public keys, a JWKS
// file).
type StaticKeys []Key

// Keys returns the keys matching kid.
func (s StaticKeys) Keys(_ context.Context, kid string) ([]Key, error) {
	return matchKID(s, kid), nil
}

// Algorithms returns the algorithms of the keys.
func (s StaticKeys) Algorithms() []string {
	var algs []string
	for _, k := range s {
		if !slices.Contains(algs, k.Alg) {
			algs = append(algs, k.Alg)
		}
	}
	return algs
}

func matchKID(keys []Key, kid string) []Key {
	if kid == "" {
		return keys
	}
	var out []Key
	for _, k := range keys {
		if k.ID == "" || k.ID == kid {
			out = append(out, k)
		}
	}
	return out
}

var hmacMinBytes = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}

// NewHMACKey returns a Key for an HMAC secret. alg is HS256 (the default
// when empty), HS384 or HS512; the secret must be at least as long as the
// hash output (RFC 7518 section 3.2).
func NewHMACKey(secret []byte, alg, kid string) (Key, error) {
	if alg == "" {
		alg = "HS256"
	}
	minLen, ok := hmacMinBytes[alg]
	if !ok {
		return Key{}, fmt.Errorf("authn: %q is not an HMAC algorithm", alg)
	}
	if len(secret) < minLen {
		return Key{}, fmt.Errorf("authn: %s secret must be at least %d bytes, got %d", alg, minLen, len(secret))
	}
	return Key{ID: kid, Alg: alg, Key: slices.Clone(secret)}, nil
}

// LoadPublicKeyFile reads a PEM public key (PUBLIC KEY, RSA PUBLIC KEY, or
// a CERTIFICATE whose key is used) and pins it to alg. See ParsePublicKeyPEM.
func LoadPublicKeyFile(path, alg, kid string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("authn: reading public key: %w", err)
	}
	k, err := ParsePublicKeyPEM(data, alg, kid)
	if err != nil {
		return Key{}, fmt.Errorf("authn: public key file %q: %w", path, err)
	}
	return k, nil
}

// ParsePublicKeyPEM parses the first PEM block of data as an RSA, ECDSA or
// Ed25519 public key and pins it to alg. alg may be empty for ECDSA (taken
// from the curve) and Ed25519 (EdDSA); RSA keys need an explicit RS* or PS*.
// Private keys are refused: configure the public half.
func ParsePublicKeyPEM(data []byte, alg, kid string) (Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return Key{}, errors.New("no PEM block found")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		return Key{}, fmt.Errorf("PEM block type %q is not a public key", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("parsing public key: %w", err)
	}
	if alg == "" {
		if alg, err = defaultAlg(pub); err != nil {
			return Key{}, err
		}
	}
	if err := checkKeyAlg(pub, alg); err != nil {
		return Key{}, err
	}
	return Key{ID: kid, Alg: alg, Key: pub}, nil
}

// defaultAlg returns the only sensible algorithm for keys that have one.
func defaultAlg(pub any) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", errors.New("unsupported ECDSA curve")
	case ed25519.PublicKey:
		return "EdDSA", nil
	case *rsa.PublicKey:
		return "", errors.New("RSA keys need an explicit algorithm (RS256, RS384, RS512, PS256, PS384, PS512)")
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// checkKeyAlg makes sure the key type fits the pinned algorithm, so that a
// public key can never be used as an HMAC secret and vice versa.
func checkKeyAlg(pub any, alg string) error {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("algorithm %s needs an RSA key, got %T", alg, pub)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		return nil
	case "ES256", "ES384", "ES512":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("algorithm %s needs an ECDSA key, got %T", alg, pub)
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if k.Curve != want {
			return fmt.Errorf("algorithm %s needs curve %s, key is on %s", alg, want.Params().Name, k.Curve.Params().Name)
		}
		return nil
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("algorithm EdDSA needs an Ed25519 key, got %T", pub)
		}
		return nil
	case "HS256", "HS384", "HS512":
		return fmt.Errorf("algorithm %s is for HMAC secrets, not public keys", alg)
	}
	return fmt.Errorf("unsupported algorithm %q", alg)
}

// asymmetricAlgs are the algorithms a JWKS may provide keys for. HMAC is
// deliberately absent: a JWKS never supplies shared secrets.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
