#!/bin/sh
# The image's entrypoint. Started as root (the default), it makes /data the ddcp user's (a host
# folder bind-mounted as `-v $(pwd)/data:/data` is root's) and runs ddcp as that user, never as
# root; started as another user (`--user`), it runs ddcp as that user.
set -eu
if [ "$(id -u)" = 0 ]; then
  if [ "$(stat -c %u /data)" != 999 ]; then
    chown -R 999:999 /data
  fi
  exec setpriv --reuid=999 --regid=999 --clear-groups --inh-caps=-all ddcp "$@"
fi
exec ddcp "$@"
