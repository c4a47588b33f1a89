#!/usr/bin/python3
"""A small RTSP server for the edge agent's tests and benchmark (GStreamer's gst-rtsp-server).

Needs Debian's Python with GObject introspection (a pyenv python has no `gi`):
  apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
      gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly

Usage:
  rtsp_server.py --port PORT [--mount /test] [--count N] [--credentials USER:PASSWORD]
                 [--tls-cert CERT.pem --tls-key KEY.pem]
                 (--live-fps FPS | --file CLIP.mp4 | --launch PIPELINE)
                 [--mount-launch MOUNT PIPELINE]... [--switch-after SECONDS
                 --switch ELEMENT.PROPERTY=VALUE...]

--live-fps  live H.264 from videotestsrc + x264enc at FPS frames per second (one encoder per client);
--file      a pre-encoded H.264 MP4 streamed at real time without re-encoding (cheap: the
            benchmark uses it so that the server costs little next to the clients);
--launch    any gst-rtsp-server launch line (its payloader must be named pay0).
--count N   mounts N copies: MOUNT0 .. MOUNT{N-1} (default: one mount at MOUNT itself).
--mount-launch MOUNT PIPELINE  one more mount with its own launch line (repeatable; alone, it
            replaces --live-fps/--file/--launch).
--switch-after SECONDS, --switch ELEMENT.PROPERTY=VALUE  SECONDS after a client's pipeline is
            built, set PROPERTY of the element named ELEMENT in it (if it has one) to VALUE, e.g.
            `--switch cam.pattern=smpte` turns `videotestsrc name=cam pattern=black` into colour
            bars: a camera whose picture recovers.
--credentials  require Basic authentication with these credentials.
--tls-cert, --tls-key  serve RTSP over TLS only (rtsps://) with this certificate and key (PEM;
            needs glib-networking, which Debian installs with GStreamer).

Prints "ready" on stdout (flushed) once the server listens; errors go to stderr with exit code 2.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(args):
    if args.launch:
        return args.launch
    if args.file:
        return (
            f'( filesrc location="{args.file}" ! qtdemux ! h264parse config-interval=-1 '
            "! rtph264pay name=pay0 pt=96 )"
        )
    fps = args.live_fps
    return (
        "( videotestsrc is-live=true pattern=ball "
        f"! video/x-raw,width={args.width},height={args.height},framerate={fps}/1 "
        "! x264enc tune=zerolatency speed-preset=ultrafast bitrate=500 "
        f"key-int-max={fps * 2} ! video/x-h264,profile=baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--mount", default="/test")
    parser.add_argument("--count", type=int, default=0)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--live-fps", type=int)
    source.add_argument("--file")
    source.add_argument("--launch")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--credentials", help="USER:PASSWORD required (Basic auth)")
    parser.add_argument("--tls-cert", help="PEM certificate (chain): serve rtsps:// only")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--mount-launch", nargs=2, action="append", default=[],
                        metavar=("MOUNT", "PIPELINE"))
    parser.add_argument("--switch-after", type=float)
    parser.add_argument("--switch", action="append", default=[],
                        metavar="ELEMENT.PROPERTY=VALUE")
    args = parser.parse_args()
    if not (args.live_fps or args.file or args.launch or args.mount_launch):
        print("one of --live-fps, --file, --launch or --mount-launch is required", file=sys.stderr)
        sys.exit(2)
    switches = []
    for spec in args.switch:
        target, _, value = spec.partition("=")
        element, _, prop = target.partition(".")
        if not (element and prop and value) or args.switch_after is None:
            print(f"--switch {spec}: expected ELEMENT.PROPERTY=VALUE with --switch-after",
                  file=sys.stderr)
            sys.exit(2)
        switches.append((element, prop, value))
    if bool(args.tls_cert) != bool(args.tls_key):
        print("--tls-cert and --tls-key go together", file=sys.stderr)
        sys.exit(2)

    Gst.init(None)
    if args.live_fps and Gst.ElementFactory.find("x264enc") is None:
        print("x264enc is missing: install gstreamer1.0-plugins-ugly", file=sys.stderr)
        sys.exit(2)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    # The role that may play the mounts: the user's, or everybody's when no credentials are
    # required (an RTSPAuth, needed for TLS, refuses anonymous clients without a default token).
    role_name = args.credentials.partition(":")[0] if args.credentials else "anonymous"
    if args.credentials or args.tls_cert:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", role_name)
        if args.credentials:
            user, _, password = args.credentials.partition(":")
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        else:
            auth.set_default_token(token)
        if args.tls_cert:
            with open(args.tls_cert) as cert, open(args.tls_key) as key:
                pem = cert.read() + key.read()
            try:
                auth.set_tls_certificate(Gio.TlsCertificate.new_from_pem(pem, -1))
            except GLib.Error as err:
                print(f"cannot use the TLS certificate: {err.message}", file=sys.stderr)
                sys.exit(2)
        server.set_auth(auth)
    def switch_later(_factory, media):
        bin_ = media.get_element()

        def apply():
            for element, prop, value in switches:
                target = bin_.get_by_name(element)
                if target is not None:
                    Gst.util_set_object_arg(target, prop, value)
            return False  # once

        GLib.timeout_add(int(args.switch_after * 1000), apply)

    mounts = server.get_mount_points()
    lines = []
    if args.live_fps or args.file or args.launch:
        line = launch_line(args)
        names = [f"{args.mount}{i}" for i in range(args.count)] if args.count else [args.mount]
        lines = [(name, line) for name in names]
    lines += [(name, line) for name, line in args.mount_launch]
    for name, line in lines:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(line)
        if switches:
            factory.connect("media-configure", switch_later)
        # Every client gets its own pipeline: a file restarts from its beginning per client.
        factory.set_shared(False)
        if args.credentials or args.tls_cert:
            role = Gst.Structure.new_empty(role_name)
            role.set_value("media.factory.access", True)
            role.set_value("media.factory.construct", True)
            factory.add_role_from_structure(role)
        mounts.add_factory(name, factory)

    try:
        server.attach(None)
    except GLib.Error as err:
        print(f"cannot listen on {args.address}:{args.port}: {err.message}", file=sys.stderr)
        sys.exit(2)
    # attach() returns 0 instead of raising on some versions.
    if server.get_bound_port() <= 0:
        print(f"cannot listen on {args.address}:{args.port}", file=sys.stderr)
        sys.exit(2)

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
