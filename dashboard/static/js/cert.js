// Reads the facts the SSL page shows from a PEM certificate, in the
// browser: the subject CN and the validity period (notBefore, notAfter).
// Only the DER structure up to the subject is walked (RFC 5280 §4.1).

function tlv(b, off) {
  if (off + 2 > b.length) throw new Error('truncated DER');
  const tag = b[off];
  let len = b[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[off + 2 + i];
    hdr += n;
  }
  const end = off + hdr + len;
  if (end > b.length) throw new Error('truncated DER');
  return {tag, start: off + hdr, end};
}

function time(b, t) {
  const s = String.fromCharCode(...b.subarray(t.start, t.end));
  const m = t.tag === 0x17
    ? s.match(/^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/)
    : s.match(/^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/);
  if (!m) throw new Error('bad time ' + s);
  let y = Number(m[1]);
  if (t.tag === 0x17) y += y < 50 ? 2000 : 1900; // RFC 5280 §4.1.2.5.1
  return new Date(Date.UTC(y, m[2] - 1, m[3], m[4], m[5], m[6]));
}

// certInfo returns {cn, notBefore, notAfter} of the first certificate in
// pem, or {error} when it cannot be read.
export function certInfo(pem) {
  try {
    const m = String(pem || '').match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/);
    if (!m) throw new Error('no PEM certificate');
    const b = Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
    const cert = tlv(b, 0);
    const tbs = tlv(b, cert.start);
    let el = tlv(b, tbs.start);
    if (el.tag === 0xa0) el = tlv(b, el.end); // version
    el = tlv(b, el.end); // signature algorithm (el was the serial)
    el = tlv(b, el.end); // issuer
    const validity = tlv(b, el.end);
    const nb = tlv(b, validity.start);
    const na = tlv(b, nb.end);
    const subject = tlv(b, validity.end);
    return {cn: commonName(b, subject), notBefore: time(b, nb), notAfter: time(b, na)};
  } catch (e) {
    return {error: e.message};
  }
}

// commonName finds the first CN (OID 2.5.4.3) in a Name.
function commonName(b, name) {
  for (let i = name.start; i + 5 < name.end; i++) {
    if (b[i] === 0x06 && b[i + 1] === 0x03 && b[i + 2] === 0x55 && b[i + 3] === 0x04 && b[i + 4] === 0x03) {
      const v = tlv(b, i + 5);
      return new TextDecoder().decode(b.subarray(v.start, v.end));
    }
  }
  return '';
}

// daysLeft counts whole days from now until d (negative once expired).
export function daysLeft(d, now = Date.now()) {
  return Math.floor((d.getTime() - now) / 86400000);
}
