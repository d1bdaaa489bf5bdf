# Caddy's builder pattern (https://hub.docker.com/_/caddy, "Adding custom
# Caddy modules"): xcaddy builds Caddy v2.11.9 with caddy-l4 and this
# plugin from the source in the build context, and the result replaces the
# binary of the official image.
#
#	docker build -t caddy-apisix .
#	docker run --rm -p 9100:9100 -v "$PWD/examples/Caddyfile:/etc/caddy/Caddyfile" caddy-apisix
FROM caddy:2.11.9-builder AS builder
COPY . /src/stream
RUN xcaddy build v2.11.9 \
	--with github.com/mholt/caddy-l4@v0.1.2 \
	--with github.com/caddy-apisix/stream@v0.0.0=/src/stream

FROM caddy:2.11.9
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
