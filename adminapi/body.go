package adminapi

import (
	"fmt"
	"io"
	"net/http"

	"github.com/caddy-apisix/stream/internal/lua"
)

// MaxBodySize is APISIX's Admin API body limit, 1.5 MiB.
const MaxBodySize = 1572864

// readBody reads and decodes the request body. An empty body gives
// hasBody=false; JSON null gives hasBody=true with a nil body.
func readBody(r *http.Request) (body any, hasBody bool, aerr *apiError) {
	raw, aerr := readRaw(r, MaxBodySize)
	if aerr != nil || len(raw) == 0 {
		return nil, false, aerr
	}
	body, aerr = decodeBody(raw)
	return body, aerr == nil, aerr
}

// readRaw reads the request body, at most limit bytes.
func readRaw(r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(r.ContentLength, limit)
	}
	if r.Body == nil {
		return nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errMsg(http.StatusBadRequest, "invalid request body: "+err.Error())
	}
	if int64(len(raw)) > limit {
		// A body without Content-Length: the size is what was read.
		return nil, tooLarge(int64(len(raw)), limit)
	}
	return raw, nil
}

func tooLarge(n, limit int64) *apiError {
	return errMsg(http.StatusBadRequest, fmt.Sprintf(
		"invalid request body: request size %d is greater than the maximum size %d allowed", n, limit))
}

// decodeBody decodes raw JSON with exact numbers, answering invalid JSON
// as APISIX does: the cjson error and the raw body.
func decodeBody(raw []byte) (any, *apiError) {
	v, msg := lua.Decode(raw)
	if msg == "" {
		return v, nil
	}
	s := string(raw)
	return nil, &apiError{status: http.StatusBadRequest,
		body: errorBody{ErrorMsg: "invalid request body: " + msg, ReqBody: &s}}
}
