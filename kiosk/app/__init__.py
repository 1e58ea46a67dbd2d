"""The kiosk put together: `runtime` wires the camera, the reader, vision, the touchscreen and the
transport to the check-in engine (`kiosk.checkin`), `cli` is `kiosk run`, `demo` is `kiosk demo`.
Nothing below this package imports it."""
