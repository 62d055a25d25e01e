#!/bin/bash
# The floor of one proxy hop on this machine, in the layout of bench/gateway_overhead.py:
# nginx as a reverse proxy (keep-alive upstream) pinned to CPU 1 in front of the mock
# upstream and the load generator on CPU 0. Prints p50/p99/p99.9 at 5,000 requests/s (three
# runs) and closed-loop requests/s at c=32. Needs nginx and oha.
#
#     bash bench/proxy_floor.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d)
for d in tmp_body tmp_proxy tmp_fcgi tmp_uwsgi tmp_scgi; do mkdir -p $D/$d $D/p/$d; done
sed "s|@DIR@|$D|g" $ROOT/bench/mock-upstream.nginx.conf > $D/nginx.conf
cat > $D/p/proxy.conf <<EOT
worker_processes 1;
pid $D/p/nginx.pid;
error_log $D/p/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $D/p/tmp_body; proxy_temp_path $D/p/tmp_proxy; fastcgi_temp_path $D/p/tmp_fcgi; uwsgi_temp_path $D/p/tmp_uwsgi; scgi_temp_path $D/p/tmp_scgi;
  upstream mock { server 127.0.0.1:18080; keepalive 256; }
  server {
    listen 127.0.0.1:18197;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOT
taskset -c 0 nginx -c $D/nginx.conf -p $D/ &
taskset -c 1 nginx -c $D/p/proxy.conf -p $D/p/ &
sleep 1
BODY='{"model":"mock","messages":[{"role":"user","content":"Hello"}]}'
URL=http://127.0.0.1:18197/v1/chat/completions
taskset -c 0 oha --no-tui -z 3s -c 64 -m POST -H 'content-type: application/json' -d "$BODY" $URL >/dev/null
for i in 1 2 3; do
taskset -c 0 oha --no-tui --output-format json -z 5s -q 5000 --latency-correction -c 64 -m POST -H 'content-type: application/json' -d "$BODY" $URL > $D/p.json
python3 -c "import json;j=json.load(open('$D/p.json'));p=j['latencyPercentiles'];print('nginx proxy 5000/s p50 %.3f p99 %.3f p999 %.3f'%(p['p50']*1000,p['p99']*1000,p['p99.9']*1000))"
done
taskset -c 0 oha --no-tui --output-format json -z 5s -c 32 -m POST -H 'content-type: application/json' -d "$BODY" $URL > $D/p.json
python3 -c "import json;j=json.load(open('$D/p.json'));print('nginx proxy c=32 rps %.0f'%j['summary']['requestsPerSec'])"
nginx -c $D/p/proxy.conf -p $D/p/ -s stop; nginx -c $D/nginx.conf -p $D/ -s stop
