package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-mlflow/caddy-mlflow/caddymodule/authz"
	"github.com/caddy-mlflow/caddy-mlflow/tlsutil"
)

// unmarshalAuth parses the auth block of the mlflow directive:
//
//	auth {
//		admin <username> <bcrypt-hash>          # repeatable
//		basic
//		api_tokens
//		jwt {
//			hmac_secret <secret> [HS256|HS384|HS512]
//			public_key  <pem-file> <alg> [kid]  # repeatable
//			jwks_file   <file>                  # repeatable
//			jwks_url    <url>
//			issuer      <iss>
//			audience    <aud...>
//			username_claims <claim...>
//			groups_claim <claim | ->
//			leeway      <duration>
//		}
//		client_cert {
//			username_from <cn|san_email|san_uri|san_dns...>
//			fingerprint   <sha256> <username>   # repeatable
//			trust_pool    [file] <ca-file...>
//			require
//		}
//		default_permission <READ|USE|EDIT|MANAGE|NO_PERMISSIONS>
//		realm <realm>
//		basic_cache_ttl <duration>
//	}
//
// Values may be placeholders such as {env.VAR}; they are replaced at
// provision.
func unmarshalAuth(d *caddyfile.Dispenser) (*AuthConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: auth takes no arguments, got %q", d.Val())
	}
	a := new(AuthConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name != "admin" && seen[name] {
			return nil, d.Errf("mlflow: auth: %s given more than once", name)
		}
		seen[name] = true
		switch name {
		case "admin":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("mlflow: auth: admin takes a username and a bcrypt hash, got %d arguments", len(args))
			}
			for _, prev := range a.Admins {
				if prev.Username == args[0] {
					return nil, d.Errf("mlflow: auth: admin %q declared twice", args[0])
				}
			}
			a.Admins = append(a.Admins, AdminConfig{Username: args[0], PasswordHash: args[1]})
		case "basic":
			if d.NextArg() {
				return nil, d.Errf("mlflow: auth: basic takes no arguments")
			}
			a.Basic = true
		case "api_tokens":
			if d.NextArg() {
				return nil, d.Errf("mlflow: auth: api_tokens takes no arguments")
			}
			a.APITokens = true
		case "default_permission":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(v, "{") {
				if _, err := authz.ParseLevel(v); err != nil {
					return nil, d.Errf("mlflow: auth: default_permission: %v", err)
				}
			}
			a.DefaultPermission = v
		case "realm":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			a.Realm = v
		case "basic_cache_ttl":
			v, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return nil, d.Errf("mlflow: auth: basic_cache_ttl %q: want a positive duration such as 5m", v)
			}
			a.BasicCacheTTL = caddy.Duration(dur)
		case "jwt":
			j, err := unmarshalJWT(d)
			if err != nil {
				return nil, err
			}
			a.JWT = j
		case "client_cert":
			c, err := unmarshalClientCert(d)
			if err != nil {
				return nil, err
			}
			a.ClientCert = c
		default:
			return nil, d.Errf("mlflow: auth: unknown sub-directive %q (known: admin, basic, api_tokens, jwt, client_cert, default_permission, realm, basic_cache_ttl)", name)
		}
	}
	if err := a.check(); err != nil {
		return nil, d.Errf("mlflow: %v", err)
	}
	return a, nil
}

func unmarshalJWT(d *caddyfile.Dispenser) (*JWTConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: auth: jwt takes a block, not arguments")
	}
	j := new(JWTConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		args := d.RemainingArgs()
		need := func(min, max int) error {
			if len(args) < min || len(args) > max {
				return d.Errf("mlflow: auth: jwt %s: wrong number of arguments (%d)", name, len(args))
			}
			return nil
		}
		switch name {
		case "hmac_secret":
			if err := need(1, 2); err != nil {
				return nil, err
			}
			j.HMACSecret = args[0]
			if len(args) == 2 {
				j.HMACAlg = args[1]
			}
		case "public_key":
			if err := need(2, 3); err != nil {
				return nil, err
			}
			pk := PublicKeyConfig{File: args[0], Alg: args[1]}
			if len(args) == 3 {
				pk.KID = args[2]
			}
			j.PublicKeys = append(j.PublicKeys, pk)
		case "jwks_file":
			if err := need(1, 1); err != nil {
				return nil, err
			}
			j.JWKSFiles = append(j.JWKSFiles, args[0])
		case "jwks_url":
			if err := need(1, 1); err != nil {
				return nil, err
			}
			j.JWKSURL = args[0]
		case "issuer":
			if err := need(1, 1); err != nil {
				return nil, err
			}
			j.Issuer = args[0]
		case "audience":
			if err := need(1, 64); err != nil {
				return nil, err
			}
			j.Audiences = append(j.Audiences, args...)
		case "username_claims":
			if err := need(1, 16); err != nil {
				return nil, err
			}
			j.UsernameClaims = args
		case "groups_claim":
			if err := need(1, 1); err != nil {
				return nil, err
			}
			j.GroupsClaim = args[0]
		case "leeway":
			if err := need(1, 1); err != nil {
				return nil, err
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil {
				return nil, d.Errf("mlflow: auth: jwt leeway %q: %v", args[0], err)
			}
			j.Leeway = caddy.Duration(dur)
		default:
			return nil, d.Errf("mlflow: auth: jwt: unknown sub-directive %q (known: hmac_secret, public_key, jwks_file, jwks_url, issuer, audience, username_claims, groups_claim, leeway)", name)
		}
	}
	return j, nil
}

func unmarshalClientCert(d *caddyfile.Dispenser) (*ClientCertConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: auth: client_cert takes a block, not arguments")
	}
	c := new(ClientCertConfig)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		args := d.RemainingArgs()
		switch name {
		case "username_from":
			if len(args) == 0 {
				return nil, d.Errf("mlflow: auth: client_cert username_from needs at least one of cn, san_email, san_uri, san_dns")
			}
			for _, a := range args {
				if !strings.Contains(a, "{") {
					if _, err := tlsutil.ParseCertField(a); err != nil {
						return nil, d.Errf("mlflow: auth: client_cert: %v", err)
					}
				}
			}
			c.UsernameFrom = args
		case "fingerprint":
			if len(args) != 2 {
				return nil, d.Errf("mlflow: auth: client_cert fingerprint takes <sha256> <username>")
			}
			if c.Fingerprints == nil {
				c.Fingerprints = map[string]string{}
			}
			c.Fingerprints[args[0]] = args[1]
		case "trust_pool":
			if len(args) > 0 && args[0] == "file" {
				args = args[1:]
			}
			if len(args) == 0 {
				return nil, d.Errf("mlflow: auth: client_cert trust_pool needs at least one CA file")
			}
			c.TrustPool = append(c.TrustPool, args...)
		case "require":
			if len(args) != 0 {
				return nil, d.Errf("mlflow: auth: client_cert require takes no arguments")
			}
			c.Require = true
		default:
			return nil, d.Errf("mlflow: auth: client_cert: unknown sub-directive %q (known: username_from, fingerprint, trust_pool, require)", name)
		}
	}
	return c, nil
}
