package authn

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-mlflow/caddy-mlflow/internal/fuzzguard"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// The fuzz fixture: an Authenticator with Basic (bcrypt at the minimum cost
// so that a wrong password costs about a millisecond), JWT (an HS256 secret,
// an ES256 and an RS256 public key, issuer and audience required) and API
// tokens, and the credentials that must verify.
const (
	fuzzUser     = "alice"
	fuzzPassword = "s3cret-pw"
	fuzzIssuer   = "https://idp.example"
	fuzzAudience = "mlflow"
	fuzzHMACKID  = "h1"
)

// fuzzNow is the verifier's clock: fixed, so seeded tokens stay valid.
var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type authFixture struct {
	auth     *Authenticator
	jwt      *JWTVerifier
	hmac     []byte
	apiToken string
	// good are JWTs signed with the configured keys that verify;
	// signedInputs are their header.payload parts.
	good         []string
	signedInputs map[string]bool
	// bad are tokens that must not verify (wrong key, alg none, expired,
	// HMAC signed with a public key, ...).
	bad []string
}

var fuzzFixture = sync.OnceValue(func() *authFixture {
	k := testKeys()
	fx := &authFixture{hmac: k.hmac, signedInputs: map[string]bool{}}

	hash, err := bcrypt.GenerateFromPassword([]byte(fuzzPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	users := &memUsers{}
	users.set(User{Name: fuzzUser, PasswordHash: hash})
	users.set(User{Name: "bob", PasswordHash: hash, Disabled: true})
	users.set(User{Name: "carol"})
	basic, err := NewBasic(users, BasicOptions{FakeHashCost: bcrypt.MinCost, Now: func() time.Time { return fuzzNow }})
	if err != nil {
		panic(err)
	}

	hk, err := NewHMACKey(k.hmac, "HS256", fuzzHMACKID)
	if err != nil {
		panic(err)
	}
	keys := StaticKeys{hk,
		{ID: "e1", Alg: "ES256", Key: &k.ec.PublicKey},
		{ID: "r1", Alg: "RS256", Key: &k.rsa.PublicKey},
	}
	fx.jwt, err = NewJWTVerifier(JWTOptions{
		Issuer:    fuzzIssuer,
		Audiences: []string{fuzzAudience},
		Now:       func() time.Time { return fuzzNow },
	}, keys)
	if err != nil {
		panic(err)
	}

	tok, th, err := NewToken()
	if err != nil {
		panic(err)
	}
	tokens := &memTokens{}
	tokens.add(TokenRecord{Hash: th, Username: fuzzUser})
	fx.apiToken = tok
	tv, err := NewTokenVerifier(tokens, users, func() time.Time { return fuzzNow })
	if err != nil {
		panic(err)
	}

	fx.auth, err = New(Config{Basic: basic, JWT: fx.jwt, Tokens: tv})
	if err != nil {
		panic(err)
	}

	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{
			"sub": fuzzUser, "iss": fuzzIssuer, "aud": fuzzAudience,
			"exp": fuzzNow.Add(time.Hour).Unix(), "iat": fuzzNow.Add(-time.Minute).Unix(),
			"groups": []string{"team-a"},
		}
		for key, v := range extra {
			if v == nil {
				delete(c, key)
			} else {
				c[key] = v
			}
		}
		return c
	}
	mustSign := func(m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		t := jwt.NewWithClaims(m, c)
		if kid != "" {
			t.Header["kid"] = kid
		}
		s, err := t.SignedString(key)
		if err != nil {
			panic(err)
		}
		return s
	}
	for _, s := range []string{
		mustSign(jwt.SigningMethodHS256, k.hmac, fuzzHMACKID, claims(nil)),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"aud": []string{"other", fuzzAudience}})),
		mustSign(jwt.SigningMethodES256, k.ec, "e1", claims(nil)),
		mustSign(jwt.SigningMethodRS256, k.rsa, "r1", claims(jwt.MapClaims{"nbf": fuzzNow.Unix()})),
	} {
		fx.good = append(fx.good, s)
		fx.signedInputs[s[:strings.LastIndexByte(s, '.')]] = true
	}
	unsigned := func(header, payload string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(header)) + "." + enc([]byte(payload)) + "."
	}
	goodPayload, _ := json.Marshal(claims(nil))
	fx.bad = []string{
		unsigned(`{"alg":"none","typ":"JWT"}`, string(goodPayload)),
		unsigned(`{"alg":"None"}`, string(goodPayload)),
		unsigned(`{"alg":"HS256"}`, string(goodPayload)),
		mustSign(jwt.SigningMethodHS256, k.ecPEM, "e1", claims(nil)),  // public key used as HMAC secret
		mustSign(jwt.SigningMethodHS256, k.rsaPEM, "r1", claims(nil)), // public key used as HMAC secret
		mustSign(jwt.SigningMethodHS256, []byte("0123456789abcdef0123456789abcdeX"), "", claims(nil)),
		mustSign(jwt.SigningMethodES256, k.otherEC, "e1", claims(nil)),
		mustSign(jwt.SigningMethodHS512, k.hmac, fuzzHMACKID, claims(nil)),
		mustSign(jwt.SigningMethodHS256, k.hmac, "e1", claims(nil)), // kid of another key
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"exp": fuzzNow.Add(-time.Hour).Unix()})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"exp": nil})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"nbf": fuzzNow.Add(time.Hour).Unix()})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"iss": "https://evil"})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"aud": "other"})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"sub": nil})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"exp": "99999999999"})),
		mustSign(jwt.SigningMethodHS256, k.hmac, "", claims(jwt.MapClaims{"exp": math.MaxFloat64})),
	}
	return fx
})

// basicHeader builds an Authorization: Basic value.
func basicHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// authHeaderSeeds are Authorization values to start from: working ones,
// near misses and hostile ones.
func authHeaderSeeds(fx *authFixture) []string {
	long := strings.Repeat("A", MaxBearerBytes)
	seeds := []string{
		basicHeader(fuzzUser, fuzzPassword), basicHeader(fuzzUser, fuzzPassword+"x"), basicHeader(fuzzUser, ""),
		basicHeader("", fuzzPassword), basicHeader("bob", fuzzPassword), basicHeader("carol", ""), basicHeader("mallory", "x"),
		basicHeader(fuzzUser+"\x00", fuzzPassword), basicHeader(fuzzUser, fuzzPassword+"\x00"), basicHeader("ALICE", fuzzPassword),
		basicHeader(fuzzUser, strings.Repeat("p", 73)), basicHeader("' OR 1=1 --", "x"), basicHeader("ålice", "ünï"),
		"basic " + base64.StdEncoding.EncodeToString([]byte(fuzzUser+":"+fuzzPassword)),
		"BASIC  " + base64.StdEncoding.EncodeToString([]byte(fuzzUser+":"+fuzzPassword)),
		"Basic " + base64.RawStdEncoding.EncodeToString([]byte(fuzzUser+":"+fuzzPassword)),
		"Basic " + base64.URLEncoding.EncodeToString([]byte(fuzzUser+":"+fuzzPassword+"??>>")),
		"Basic", "Basic ", "Basic ===", "Basic Og==", "Basic " + strings.Repeat("QUFB", 1<<12),
		"Bearer", "Bearer ", "Bearer  ", "Bearer " + fx.apiToken, "bearer " + fx.apiToken, "Bearer " + fx.apiToken + "x",
		"Bearer " + TokenPrefix + strings.Repeat("A", 43), "Bearer " + TokenPrefix, "Bearer " + long, "Bearer " + long + "A",
		"Bearer " + strings.Repeat("A", 1000) + "." + strings.Repeat("B", 1000) + "." + strings.Repeat("C", 1000),
		"Bearer a.b.c", "Bearer ..", "Bearer a..", "Bearer a.b.c.d", "Bearer e30.e30.", "Bearer e30.e30.e30",
		"Digest username=\"alice\"", "Negotiate YII=", "", " ", "\x00", "Basic\x00" + fuzzUser, "Bearer\t" + fx.good[0],
	}
	for _, s := range append(slices.Clone(fx.good), fx.bad...) {
		seeds = append(seeds, "Bearer "+s, "bearer  "+s+" ", "Bearer "+s+"=")
	}
	return seeds
}

// FuzzAuthorizationHeader sends one Authorization header value through the
// Authenticator (Basic, JWT and API tokens enabled). It must never panic or
// hang, refuse with an error wrapping ErrInvalidCredentials or
// ErrNoCredentials (the user and token sources never fail here), keep the
// presented secret out of the error text, and accept only what is
// genuinely valid: Basic exactly alice's password, a JWT whose signed part
// is byte-identical to one the fixture signed, the one API token.
func FuzzAuthorizationHeader(f *testing.F) {
	fx := fuzzFixture()
	for _, s := range authHeaderSeeds(fx) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		defer fuzzguard.Start("authorization", header)()
		r, err := http.NewRequest(http.MethodGet, "http://mlflow.test/api/2.0/mlflow/experiments/search", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header["Authorization"] = []string{header}
		p, err := fx.auth.Authenticate(context.Background(), r)
		scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
		cred = strings.TrimSpace(cred)
		if err != nil {
			if !errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, ErrNoCredentials) {
				t.Fatalf("error %v wraps neither ErrInvalidCredentials nor ErrNoCredentials", err)
			}
			if p != nil {
				t.Fatalf("principal %+v returned with error %v", p, err)
			}
			if len(cred) >= 24 && strings.Contains(err.Error(), cred) {
				t.Fatalf("error text carries the presented credential: %v", err)
			}
			return
		}
		if p == nil {
			t.Fatal("nil principal without an error")
		}
		switch p.Method {
		case MethodBasic:
			raw, derr := base64.StdEncoding.DecodeString(cred)
			if !strings.EqualFold(scheme, "Basic") || derr != nil || string(raw) != fuzzUser+":"+fuzzPassword || p.Username != fuzzUser {
				t.Fatalf("Basic accepted %q as %q; only %s's password may verify", header, p.Username, fuzzUser)
			}
		case MethodJWT:
			i := strings.LastIndexByte(cred, '.')
			if !strings.EqualFold(scheme, "Bearer") || i < 0 || !fx.signedInputs[cred[:i]] {
				t.Fatalf("JWT %q verified but its signed part is not one the fixture signed", cred)
			}
			if p.Username != fuzzUser {
				t.Fatalf("JWT verified as %q", p.Username)
			}
		case MethodToken:
			if !strings.EqualFold(scheme, "Bearer") || cred != fx.apiToken || p.Username != fuzzUser {
				t.Fatalf("API token %q verified as %q", cred, p.Username)
			}
		default:
			t.Fatalf("header %q authenticated with method %q", header, p.Method)
		}
	})
}

// FuzzJWTClaims signs arbitrary header and payload JSON with the configured
// HS256 secret (as an issuer holding the secret would) and verifies the
// token. Whatever the JSON says, a token that verifies must have alg HS256
// (the only algorithm that key is pinned to; "none", other HMAC sizes and
// the public-key algorithms never verify an HMAC signature), no crit
// header, a kid that selects the HMAC key, the configured issuer and
// audience, a numeric exp not in the past and no nbf or iat in the future
// (leeway allowed), and the username of its sub claim.
func FuzzJWTClaims(f *testing.F) {
	fx := fuzzFixture()
	exp, iat := fuzzNow.Add(time.Hour).Unix(), fuzzNow.Unix()
	good := fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":%d,"iat":%d,"groups":["g"]}`, fuzzIssuer, fuzzAudience, exp, iat)
	headers := []string{
		`{"alg":"HS256","typ":"JWT"}`, `{"alg":"HS256","kid":"h1"}`, `{"alg":"HS256","kid":"e1"}`, `{"alg":"HS256","kid":5}`,
		`{"alg":"none"}`, `{"alg":"NONE"}`, `{"alg":"HS512"}`, `{"alg":"ES256"}`, `{"alg":"RS256"}`, `{"alg":"hs256"}`,
		`{"alg":"HS256 "}`, `{"alg":["HS256"]}`, `{"alg":null}`, `{}`, `{"alg":"HS256","crit":["exp"]}`, `{"alg":"HS256","b64":false}`,
		`{"alg":"HS256","alg":"none"}`, `{"alg":"none","alg":"HS256"}`, `{"alg":"HS256","jku":"http://evil/jwks"}`,
		`{"alg":"HS256","kid":"../../../dev/null"}`, `{"alg":"HS256","kid":"' OR 1=1 --"}`, `[]`, `null`, `"HS256"`, ``, `{`,
	}
	payloads := []string{
		good,
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":["x",%q],"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":%d.999,"nbf":%d,"iat":%d}`, fuzzIssuer, fuzzAudience, exp, iat+20, iat+29),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":"%d"}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":1e400}`, fuzzIssuer, fuzzAudience),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":1e300}`, fuzzIssuer, fuzzAudience),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":-1}`, fuzzIssuer, fuzzAudience),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":null}`, fuzzIssuer, fuzzAudience),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":%d,"nbf":1e300}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":%d,"iat":9223372036854775808}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":["alice"],"iss":%q,"aud":%q,"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"","iss":%q,"aud":%q,"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","sub":"admin","iss":%q,"aud":%q,"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":[%q],"aud":%q,"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":[],"exp":%d}`, fuzzIssuer, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":[1,{"a":%q}],"exp":%d}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"alice","iss":%q,"aud":%q,"exp":%d,"groups":[[["x"]],1,null,"g"]}`, fuzzIssuer, fuzzAudience, exp),
		fmt.Sprintf(`{"sub":"al\u0000ice","iss":%q,"aud":%q,"exp":%d,"x":%s}`, fuzzIssuer, fuzzAudience, exp, strings.Repeat("[", 5000)+strings.Repeat("]", 5000)),
		`{}`, `[]`, `null`, ``, `{"sub":"alice"`, "\xff\xfe",
	}
	for _, h := range headers {
		f.Add(h, good)
	}
	for _, p := range payloads {
		f.Add(`{"alg":"HS256","typ":"JWT"}`, p)
		f.Add(`{"alg":"none"}`, p)
	}
	f.Fuzz(func(t *testing.T, header, payload string) {
		defer fuzzguard.Start("jwt claims", header, payload)()
		enc := base64.RawURLEncoding.EncodeToString
		input := enc([]byte(header)) + "." + enc([]byte(payload))
		mac := hmac.New(sha256.New, fx.hmac)
		mac.Write([]byte(input))
		token := input + "." + enc(mac.Sum(nil))
		p, err := fx.jwt.Verify(context.Background(), token)
		if err != nil {
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("error %v does not wrap ErrInvalidCredentials", err)
			}
			return
		}
		var h map[string]any
		if err := json.Unmarshal([]byte(header), &h); err != nil {
			t.Fatalf("verified with a header that is not a JSON object: %v", err)
		}
		if h["alg"] != "HS256" {
			t.Fatalf("an HMAC-SHA256 signature verified under alg %v", h["alg"])
		}
		if _, ok := h["crit"]; ok {
			t.Fatal("verified a token with a crit header")
		}
		if kid, ok := h["kid"]; ok && kid != fuzzHMACKID {
			t.Fatalf("verified with kid %v, which does not select the HMAC key", kid)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(payload)))
		dec.UseNumber()
		var c map[string]any
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("verified with a payload that is not a JSON object: %v", err)
		}
		if c["iss"] != fuzzIssuer {
			t.Fatalf("verified with iss %v", c["iss"])
		}
		switch aud := c["aud"].(type) {
		case string:
			if aud != fuzzAudience {
				t.Fatalf("verified with aud %q", aud)
			}
		case []any:
			if !slices.Contains(aud, any(fuzzAudience)) {
				t.Fatalf("verified with aud %v", aud)
			}
		default:
			t.Fatalf("verified with aud %v", c["aud"])
		}
		slack := DefaultJWTLeeway + time.Second
		num := func(name string) (float64, bool) {
			v, ok := c[name]
			if !ok {
				return 0, false
			}
			n, isNum := v.(json.Number)
			if !isNum {
				t.Fatalf("verified with a non-numeric %s claim %v", name, v)
			}
			x, err := n.Float64()
			if err != nil {
				t.Fatalf("verified with %s claim %v: %v", name, n, err)
			}
			return x, true
		}
		e, ok := num("exp")
		if !ok {
			t.Fatal("verified without exp")
		}
		if e < float64(fuzzNow.Add(-slack).Unix()) {
			t.Fatalf("verified with exp %v, before now %d", e, fuzzNow.Unix())
		}
		for _, name := range []string{"nbf", "iat"} {
			if v, ok := num(name); ok && v > float64(fuzzNow.Add(slack).Unix()) {
				t.Fatalf("verified with %s %v, after now %d", name, v, fuzzNow.Unix())
			}
		}
		if sub, _ := c["sub"].(string); sub == "" || p.Username != sub || p.Method != MethodJWT {
			t.Fatalf("verified as %q (%s); sub is %v", p.Username, p.Method, c["sub"])
		}
	})
}

// FuzzParseKeys feeds bytes to the key parsers of jwks_file / jwks_url and
// public_key: ParseJWKS and ParsePublicKeyPEM. They must not panic or hang,
// and every key they return must be a public key of the type its
// algorithm needs, never an HMAC secret and never "none".
func FuzzParseKeys(f *testing.F) {
	k := testKeys()
	b64 := base64.RawURLEncoding.EncodeToString
	ecx, ecy := k.ec.PublicKey.X.FillBytes(make([]byte, 32)), k.ec.PublicKey.Y.FillBytes(make([]byte, 32))
	jwks := []string{
		fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"r1","n":%q,"e":"AQAB"}]}`, b64(k.rsa.PublicKey.N.Bytes())),
		fmt.Sprintf(`{"keys":[{"kty":"RSA","alg":"PS256","use":"sig","n":%q,"e":"AQAB"}]}`, b64(k.rsa.PublicKey.N.Bytes())),
		fmt.Sprintf(`{"keys":[{"kty":"RSA","alg":"HS256","n":%q,"e":"AQAB"}]}`, b64(k.rsa.PublicKey.N.Bytes())),
		fmt.Sprintf(`{"keys":[{"kty":"RSA","n":%q,"e":"Ag"}]}`, b64(k.rsa.PublicKey.N.Bytes())),
		fmt.Sprintf(`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB"},{"kty":"RSA","n":%q,"e":"AQAB"}]}`, b64(k.rsa.PublicKey.N.Bytes())),
		fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","x":%q,"y":%q}]}`, b64(ecx), b64(ecy)),
		fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES384","x":%q,"y":%q}]}`, b64(ecx), b64(ecy)),
		fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","x":%q,"y":%q}]}`, b64(ecx), b64(ecx)),
		fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":%q}]}`, b64(k.ed.Public().(ed25519.PublicKey))),
		`{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}`, `{"keys":[{"kty":"RSA","alg":"none","n":"AQ","e":"AQAB"}]}`,
		`{"keys":[{"kty":"RSA","use":"enc","n":"AQ","e":"AQAB"}]}`, `{"keys":[]}`, `{"keys":null}`, `{"keys":[1,"a",null]}`, `{}`, `[]`, ``,
		`{"keys":[{"kty":"EC","crv":"P-224","x":"AA","y":"AA"}]}`, `{"keys":[{"kty":"RSA","n":"` + strings.Repeat("_w", 8192) + `","e":"AQAB"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQ","e":"` + strings.Repeat("A", 100) + `"}]}`,
		`{"keys":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	}
	for _, s := range jwks {
		f.Add([]byte(s), "")
	}
	for _, p := range [][]byte{k.rsaPEM, k.ecPEM, k.edPEM} {
		for _, alg := range []string{"", "RS256", "PS512", "ES256", "ES512", "EdDSA", "HS256", "none"} {
			f.Add(p, alg)
		}
	}
	f.Add([]byte("-----BEGIN RSA PUBLIC KEY-----\nAA==\n-----END RSA PUBLIC KEY-----\n"), "RS256")
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"), "")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"+strings.Repeat("QUFB", 1000)+"\n-----END CERTIFICATE-----\n"), "ES256")
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----"), "")
	f.Fuzz(func(t *testing.T, data []byte, alg string) {
		defer fuzzguard.Start("keys", string(data), alg)()
		if keys, err := ParseJWKS(data); err == nil {
			if len(keys) == 0 {
				t.Fatal("ParseJWKS returned no key and no error")
			}
			for _, key := range keys {
				checkFuzzKey(t, "jwks", key)
			}
		}
		if key, err := ParsePublicKeyPEM(data, alg, "kid"); err == nil {
			checkFuzzKey(t, "pem", key)
			if alg != "" && key.Alg != alg {
				t.Fatalf("pem: key pinned to %s, asked for %s", key.Alg, alg)
			}
		}
	})
}

// checkFuzzKey asserts that a parsed key is a public key fitting its
// algorithm.
func checkFuzzKey(t *testing.T, what string, key Key) {
	t.Helper()
	ok := false
	switch key.Alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		k, isRSA := key.Key.(*rsa.PublicKey)
		ok = isRSA && k.N.BitLen() >= MinRSABits && k.E >= 3 && k.E%2 == 1
	case "ES256", "ES384", "ES512":
		_, ok = key.Key.(*ecdsa.PublicKey)
	case "EdDSA":
		pk, isEd := key.Key.(ed25519.PublicKey)
		ok = isEd && len(pk) == ed25519.PublicKeySize
	}
	if !ok {
		t.Fatalf("%s: parsed a %T key pinned to %q", what, key.Key, key.Alg)
	}
}
