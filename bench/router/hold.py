"""Opens N keep-alive connections to 127.0.0.1:PORT one after another, each sending one
request and reading its whole answer (1 KiB body) before the next connects, then holds
them all open until stdin closes, while bench/router.sh reads the router's RSS. Prints
'ready' once every connection has been answered."""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
conns = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 1024:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed early")
        answer += chunk
    conns.append(s)
print("ready", flush=True)
sys.stdin.read()
