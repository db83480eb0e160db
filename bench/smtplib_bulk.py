#!/usr/bin/python3
"""Bulk baseline for bench/run: Python smtplib, ONE connection, one
sendmail() call per message file.  Usage: smtplib_bulk.py HOST PORT FROM TO FILE...
"""
import smtplib
import sys


def main():
    host, port, sender, rcpt = sys.argv[1:5]
    files = sys.argv[5:]
    with smtplib.SMTP(host, int(port), timeout=30) as s:
        s.ehlo("localhost")
        for path in files:
            with open(path, "rb") as f:
                s.sendmail(sender, [rcpt], f.read())
        # leaving the with block sends QUIT


if __name__ == "__main__":
    main()
