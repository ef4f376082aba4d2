package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"

	"github.com/caddy-mlflow/caddy-mlflow/tracking/otlpspans"
)

// OTLPConfig bounds what one OTLP span export (POST /v1/traces) may hold;
// a request over a bound gets OTLP's error answer (413 for the body, 400
// otherwise). Zero fields (or no otlp block) take the defaults of
// otlpspans.DefaultLimits: 16 MiB, 10,000 spans, 200,000 attribute values,
// 32 levels of nesting. The bounds are checked by otlpspans.Limits.Validate.
type OTLPConfig struct {
	// MaxBodySize caps the request body in bytes, before and after
	// decompression (1 KiB to 1 GiB).
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// MaxSpans caps the spans of one request (up to 1,000,000).
	MaxSpans int `json:"max_spans,omitempty"`
	// MaxAttributeValues caps the attribute values of one request, nested
	// ones included (up to 10,000,000).
	MaxAttributeValues int `json:"max_attribute_values,omitempty"`
	// MaxNesting caps how deep attribute values (arrays and key-value
	// lists) nest (up to 100).
	MaxNesting int `json:"max_nesting,omitempty"`
}

// limits are the configured bounds in otlpspans' terms.
func (o *OTLPConfig) limits() otlpspans.Limits {
	if o == nil {
		return otlpspans.Limits{}
	}
	return otlpspans.Limits{MaxBodyBytes: o.MaxBodySize, MaxSpans: o.MaxSpans, MaxValues: o.MaxAttributeValues, MaxDepth: o.MaxNesting}
}

// check refuses negative or absurd bounds.
func (o *OTLPConfig) check() error { return o.limits().Validate() }

// unmarshalOTLP reads the otlp block:
//
//	otlp {
//		max_body_size        <size, e.g. 4MiB>
//		max_spans            <n>
//		max_attribute_values <n>
//		max_nesting          <n>
//	}
func unmarshalOTLP(d *caddyfile.Dispenser) (*OTLPConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("mlflow: otlp takes no arguments, only a block")
	}
	o := new(OTLPConfig)
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] {
			return nil, d.Errf("mlflow: otlp: %s given more than once", name)
		}
		seen[name] = true
		v, err := oneArg(d)
		if err != nil {
			return nil, err
		}
		count := func() (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return 0, d.Errf("mlflow: otlp: %s %q: want a positive whole number", name, v)
			}
			return n, nil
		}
		switch name {
		case "max_body_size":
			n, perr := humanize.ParseBytes(v)
			if perr != nil || n == 0 || n > 1<<62 {
				err = d.Errf("mlflow: otlp: max_body_size %q: want a positive size such as 4MiB", v)
			}
			o.MaxBodySize = int64(n)
		case "max_spans":
			o.MaxSpans, err = count()
		case "max_attribute_values":
			o.MaxAttributeValues, err = count()
		case "max_nesting":
			o.MaxNesting, err = count()
		default:
			err = d.Errf("mlflow: otlp: unknown setting %q (known: max_body_size, max_spans, max_attribute_values, max_nesting)", name)
		}
		if err != nil {
			return nil, err
		}
		if d.NextBlock(d.Nesting()) {
			return nil, d.Errf("mlflow: otlp: %s takes no block", name)
		}
	}
	if err := o.check(); err != nil {
		return nil, d.Errf("mlflow: %v", err)
	}
	return o, nil
}
