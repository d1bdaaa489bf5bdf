package adminapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// ServerHeader is the Server header of every response. APISIX clients
// (ADC, the ingress controller) read the gateway version from it, so it
// names the APISIX release whose Admin API this package implements.
const ServerHeader = "APISIX/3.18.0"

// errorBody is APISIX's JSON error shape.
type errorBody struct {
	// ErrorMsg is the error text clients match on.
	ErrorMsg string `json:"error_msg"`
	// Description is the reason of a 401 ("missing apikey", ...).
	Description string `json:"description,omitempty"`
	// ReqBody echoes a body that is not valid JSON.
	ReqBody *string `json:"req_body,omitempty"`
}

// apiError is a finished error response; handlers return it (also from
// inside registry transactions) and ServeHTTP writes it.
type apiError struct {
	status int
	// body is JSON-encoded; a string body is sent as text/plain.
	body any
}

func (e *apiError) Error() string {
	switch b := e.body.(type) {
	case errorBody:
		return b.ErrorMsg
	case string:
		return b
	}
	return http.StatusText(e.status)
}

// errMsg is the usual {"error_msg": msg} response.
func errMsg(status int, msg string) *apiError {
	return &apiError{status: status, body: errorBody{ErrorMsg: msg}}
}

// keyNotFound is etcd's 404 body, which APISIX passes through (the field
// is "message", not "error_msg").
func keyNotFound() *apiError {
	return &apiError{status: http.StatusNotFound, body: map[string]string{"message": "Key not found"}}
}

// setCommonHeaders sets the headers APISIX sends on every Admin response.
func setCommonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Server", ServerHeader)
	h.Set("X-API-VERSION", "v3")
}

// writeJSON writes an Admin API answer: APISIX's headers and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	setCommonHeaders(w)
	WriteJSON(w, status, v)
}

// WriteJSON writes v as JSON followed by "\n", as APISIX's core.response
// does for tables. HTML escaping is off so PEM text and regexes read as
// sent. It sets no Admin API headers: the control API (/v1/healthcheck,
// /v1/cluster) answers with it too.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value written here is built from decoded JSON, so this is
		// unreachable; answer rather than panic.
		buf.Reset()
		buf.WriteString(`{"error_msg":"failed to encode response"}` + "\n")
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// WriteErrorMsg writes APISIX's {"error_msg": msg} body, for the control
// API's refusals.
func WriteErrorMsg(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, errorBody{ErrorMsg: msg})
}

// NotRunning is the answer of every Admin and control API request while
// no apisix app runs.
const NotRunning = "apisix app is not running"

// writeText writes a plain body, used where APISIX (or nginx in front of
// it) answers with a string rather than a table.
func writeText(w http.ResponseWriter, status int, contentType, text string) {
	setCommonHeaders(w)
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text))
}

// writeError writes an apiError.
func writeError(w http.ResponseWriter, e *apiError) {
	if s, ok := e.body.(string); ok {
		writeText(w, e.status, "text/plain; charset=utf-8", s)
		return
	}
	writeJSON(w, e.status, e.body)
}

// nginxPage is the body nginx sends for its own 403/404 answers, which
// APISIX returns for denied clients and unrouted methods.
func nginxPage(status int) string {
	line := strconv.Itoa(status) + " " + http.StatusText(status)
	return "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" +
		line + "</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n"
}
