"""Installing the kiosk: the Raspberry Pi boot partition (bootcfg). The install itself is
`setup.sh` and the scripts in firmware_configs/; this package holds what they run in Python."""
