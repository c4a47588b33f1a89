# The one-shot `bootstrap` service of docker-compose.yml: deploy/compose/bootstrap.sh with
# curl and jq. Build context: deploy/compose/.
FROM alpine:3.20
RUN apk add --no-cache curl jq
COPY bootstrap.sh /usr/local/bin/bootstrap
ENTRYPOINT ["/usr/local/bin/bootstrap"]
