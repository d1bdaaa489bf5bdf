package adminapi

import (
	"encoding/json"
	"net/http"

	yaml "go.yaml.in/yaml/v3"

	"github.com/caddy-apisix/stream/standalone"
)

// configsBody is the 400 of POST /apisix/admin/configs/validate
// (apisix/admin/config_validate.lua validate).
type configsBody struct {
	// ErrorMsg is "Configuration validation failed".
	ErrorMsg string `json:"error_msg"`
	// Errors lists every problem with its resource_type and index.
	Errors []standalone.ItemError `json:"errors"`
}

// routeConfigs answers /apisix/admin/configs and /configs/validate:
// validate in every mode, GET/PUT/HEAD of the whole configuration in the
// API-driven standalone mode (apisix/admin/standalone.lua). ok is false
// for any other path.
func (h *Handler) routeConfigs(r *http.Request, cfg *Config, segs []string) (rep reply, ok bool, err error) {
	if segs[0] != "configs" {
		return reply{}, false, nil
	}
	switch {
	case len(segs) == 2 && segs[1] == "validate" && r.Method == http.MethodPost:
		rep, err = validateConfigs(r)
		return rep, true, err
	case len(segs) != 1 || cfg.Standalone == nil:
		return reply{}, false, nil
	}
	switch r.Method {
	case http.MethodPut:
		rep, err = putConfigs(r, cfg.Standalone)
	case http.MethodGet, http.MethodHead:
		rep, err = getConfigs(r, cfg.Standalone)
	default:
		return reply{}, true, &apiError{status: http.StatusNotFound, body: nginxPage(http.StatusNotFound)}
	}
	return rep, true, err
}

// MaxConfigsSize bounds a PUT /apisix/admin/configs body. APISIX sets no
// limit there (client_max_body_size 0); the validate endpoint keeps the
// Admin API's MaxBodySize, as config_validate.lua does.
const MaxConfigsSize = 64 << 20

// readDocument reads a configs body of at most limit bytes: JSON, or YAML
// when the content type says application/yaml.
func readDocument(r *http.Request, limit int64) (standalone.Document, *apiError) {
	raw, aerr := readRaw(r, limit)
	if aerr != nil {
		return nil, aerr
	}
	if len(raw) == 0 {
		return nil, errMsg(http.StatusBadRequest, "invalid request body: empty request body")
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	doc, err := standalone.DecodeBody(raw, ct)
	if err != nil {
		return nil, errMsg(http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	return doc, nil
}

// validateConfigs checks a whole document without storing anything: 200
// {} when it is valid, else 400 with every problem in errors[].
func validateConfigs(r *http.Request) (reply, error) {
	doc, aerr := readDocument(r, MaxBodySize)
	if aerr != nil {
		return reply{}, aerr
	}
	if errs := standalone.Validate(doc); len(errs) > 0 {
		return reply{}, &apiError{status: http.StatusBadRequest,
			body: configsBody{ErrorMsg: "Configuration validation failed", Errors: errs}}
	}
	return reply{status: http.StatusOK, body: map[string]any{}}, nil
}

// putConfigs replaces the whole configuration.
func putConfigs(r *http.Request, c *standalone.Configs) (reply, error) {
	digest, has := r.Header[http.CanonicalHeaderKey(standalone.HeaderDigest)]
	if !has {
		return reply{}, errMsg(http.StatusBadRequest, "missing digest header")
	}
	doc, aerr := readDocument(r, MaxConfigsSize)
	if aerr != nil {
		return reply{}, aerr
	}
	res := c.Update(doc, digest[0])
	if res.ErrorMsg != "" {
		return reply{}, errMsg(res.Status, res.ErrorMsg)
	}
	rep := reply{status: res.Status}
	if res.Status == http.StatusAccepted {
		rep.headers = map[string]string{
			standalone.HeaderLastModified: res.LastModified,
			standalone.HeaderDigest:       res.Digest,
		}
	}
	return rep, nil
}

// getConfigs answers the configuration (GET) or only its metadata
// headers (HEAD). Accept: application/yaml asks for YAML.
func getConfigs(r *http.Request, c *standalone.Configs) (reply, error) {
	doc, lastModified, digest := c.Current()
	rep := reply{status: http.StatusOK, headers: map[string]string{}}
	if lastModified != "" {
		rep.headers[standalone.HeaderLastModified] = lastModified
	}
	if digest != "" {
		rep.headers[standalone.HeaderDigest] = digest
	}
	if r.Method == http.MethodHead {
		return rep, nil
	}
	if accept := r.Header.Get("Accept"); len(accept) >= 16 && accept[:16] == "application/yaml" {
		out, err := yaml.Marshal(standalone.Plain(doc))
		if err != nil {
			return reply{}, errMsg(http.StatusInternalServerError, "failed to encode yaml")
		}
		rep.body = rawBody{contentType: "application/yaml", data: out}
		return rep, nil
	}
	// the JSON text without a final newline, as standalone.lua sends it
	out, err := json.Marshal(doc)
	if err != nil {
		return reply{}, errMsg(http.StatusInternalServerError, "failed to encode json: "+err.Error())
	}
	rep.body = rawBody{contentType: "application/json", data: out}
	return rep, nil
}

// rawBody is a reply body sent as is.
type rawBody struct {
	contentType string
	data        []byte
}
