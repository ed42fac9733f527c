public import Foundation
import TandemProcess

/// Debian's nginx as a real reverse proxy on a free loopback port, in front of one server or
/// several (`upstreamPorts`, which share one PostgreSQL store), configured as
/// docs/operations.md tells an operator: it adds the client's address to `X-Forwarded-For`,
/// passes WebSocket upgrades through, and sends a request that cannot reach one instance to
/// the next. Runs as one process (no master, no daemon) with everything in a directory of
/// its own, and is stopped when released.
public final class ReverseProxy: Sendable {
    public let url: String
    public let port: Int
    let child: ChildProcess
    let directory: TemporaryDirectory

    public convenience init(upstreamPort: Int) async throws {
        try await self.init(upstreamPorts: [upstreamPort])
    }

    public init(upstreamPorts: [Int]) async throws {
        let directory = try TemporaryDirectory("tandem-nginx")
        let port = try FreePort.find()
        let prefix = directory.url.path
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            error_log \(prefix)/error.log warn;
            pid \(prefix)/nginx.pid;
            events { worker_connections 512; }
            http {
                access_log off;
                map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
                upstream tandem {
            \(upstreamPorts.map { "        server 127.0.0.1:\($0) max_fails=1 fail_timeout=2s;" }.joined(separator: "\n"))
                    keepalive 16;
                }
                client_body_temp_path \(prefix)/body;
                proxy_temp_path \(prefix)/proxy;
                fastcgi_temp_path \(prefix)/fastcgi;
                uwsgi_temp_path \(prefix)/uwsgi;
                scgi_temp_path \(prefix)/scgi;
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://tandem;
                        proxy_http_version 1.1;
                        proxy_set_header Upgrade $http_upgrade;
                        proxy_set_header Connection $connection_upgrade;
                        proxy_read_timeout 1h;
                        proxy_next_upstream error timeout http_502 http_503;
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    }
                }
            }
            """
        try config.write(toFile: directory.path("nginx.conf"), atomically: true, encoding: .utf8)
        let process = try Subprocess(
            try Self.nginx().path, ["-e", directory.path("error.log"), "-p", prefix, "-c", directory.path("nginx.conf")],
            output: .null, error: .null)
        child = ChildProcess(running: process, releaseSignal: SIGKILL)
        self.directory = directory
        self.port = port
        url = "http://127.0.0.1:\(port)"
        // Ready once it accepts a connection.
        _ = try await within(.seconds(30)) {
            while !FreePort.accepts(port) {
                guard process.isRunning else {
                    let log = (try? String(contentsOfFile: directory.path("error.log"), encoding: .utf8)) ?? ""
                    throw LiveServerError.didNotStart("nginx: \(log)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func nginx() throws -> URL {
        for candidate in ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        throw LiveServerError.didNotStart("nginx is not installed: scripts/bootstrap installs it")
    }

    /// Ends it (SIGKILL: it keeps nothing) and waits for it off the pool.
    public func stop() async { await child.kill9() }
}

/// Loopback ports for processes that must be told theirs.
public enum FreePort {
    /// A port nothing listens on now (the kernel's pick for a socket bound to port 0).
    public static func find() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LiveServerError.didNotStart("no socket") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw LiveServerError.didNotStart("cannot bind") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections on the loopback port.
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

/// curl, for requests that must come from a given loopback address (`--interface
/// 127.0.0.N`), which the suite's HTTP client cannot choose. Returns its standard output.
public func curl(_ arguments: [String]) async throws -> String {
    try await offThePool {
        let process = try Subprocess("/usr/bin/curl", ["--silent", "--show-error", "--max-time", "30"] + arguments, output: .pipe, error: .null)
        let data = process.standardOutput!.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
