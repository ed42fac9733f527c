import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import TandemProtocol

/// Moves bytes between a device and the server over HTTP (AsyncHTTPClient).
///
/// Refuses to send a token over plain HTTP to anything but a loopback address, unless
/// told `allowInsecure`.
public struct HTTPTransport: Sendable {
    public let server: String
    let allowInsecure: Bool

    public init(server: String, allowInsecure: Bool = false) throws(SyncError) {
        guard let url = URL(string: server), let scheme = url.scheme, scheme == "http" || scheme == "https", let host = url.host else {
            throw .invalidServer(server)
        }
        if scheme == "http" && !allowInsecure && !Loopback.contains(host) { throw .insecureTransport(host) }
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.allowInsecure = allowInsecure
    }

    /// One client for the process. Connection failures are not retried inside the client
    /// (that would wait for the whole request deadline): `send` retries them itself, briefly.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        configuration.connectionPool.retryConnectionEstablishment = false
        // A redirect would re-send a push (health data) wherever it points, plain HTTP
        // included: the server never redirects, so none is followed.
        configuration.redirectConfiguration = .disallow
        // Shorter than the server's idle deadline (75 s, PROTOCOL.md §9.14): the client
        // closes an idle connection before the server does, never sending on one closing.
        configuration.connectionPool.idleTimeout = .seconds(60)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// GETs `path` and decodes the JSON answer.
    func get<Answer: Decodable>(_ path: String, token: String) async throws(SyncError) -> Answer {
        let data = try await send(.GET, path, token: token, contentType: nil, body: nil).data
        do { return try JSONDecoder().decode(Answer.self, from: data) } catch { throw .badAnswer(path) }
    }

    /// POSTs `body` and returns the answer's bytes, or throws the server's error.
    func post(_ path: String, token: String?, contentType: String, body: [UInt8], headers: [String: String] = [:]) async throws(SyncError) -> Data {
        try await send(.POST, path, token: token, contentType: contentType, body: body, headers: headers).data
    }

    /// POSTs `body` and returns the answer's bytes and content type.
    func postTyped(
        _ path: String, token: String?, contentType: String, body: [UInt8], headers: [String: String] = [:]
    ) async throws(SyncError) -> (data: Data, contentType: String?) {
        try await send(.POST, path, token: token, contentType: contentType, body: body, headers: headers)
    }

    /// How many times a transient failure (network, 5xx, 429) is tried again.
    static let retries = 4

    /// Sends with retries: transient failures wait 0.2 s, 0.4 s, 0.8 s, 1.6 s (each with up
    /// to 50 % random jitter, so many devices do not retry in step); everything else is
    /// thrown at once. Every request is safe to repeat: pushes are idempotent (replays are
    /// acknowledged), pulls read.
    private func send(
        _ method: HTTPMethod, _ path: String, token: String?, contentType: String?, body: [UInt8]?, headers: [String: String] = [:]
    ) async throws(SyncError) -> (data: Data, contentType: String?) {
        var attempt = 0
        while true {
            do {
                return try await sendOnce(method, path, token: token, contentType: contentType, body: body, headers: headers)
            } catch {
                guard error.isTransient, attempt < Self.retries else { throw error }
                let base = 0.2 * Double(1 << attempt)
                try? await Task.sleep(for: .seconds(base * Double.random(in: 1...1.5)))
                attempt += 1
            }
        }
    }

    private func sendOnce(
        _ method: HTTPMethod, _ path: String, token: String?, contentType: String?, body: [UInt8]?, headers: [String: String]
    ) async throws(SyncError) -> (data: Data, contentType: String?) {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        request.headers.add(name: WireProtocol.header, value: WireProtocol.version)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let status: Int
        let data: Data
        let answerType: String?
        do {
            let response = try await Self.client.execute(request, timeout: .seconds(60))
            status = Int(response.status.code)
            answerType = response.headers.first(name: "Content-Type")
            let buffer = try await response.body.collect(upTo: 64 << 20)
            data = Data(buffer.readableBytesView)
        } catch {
            throw .unreachable(server)
        }
        guard (200..<300).contains(status) else {
            if let answer = try? JSONDecoder().decode(ErrorResponse.self, from: data) {
                if answer.error == ErrorCode.refused.rawValue, let refused = answer.refused {
                    throw .refused(refused, serverTime: answer.serverTime)
                }
                throw .server(status: status, code: answer.error, message: answer.message)
            }
            throw .server(status: status, code: "http", message: "HTTP \(status)")
        }
        return (data, answerType)
    }

    func postJSON<Answer: Decodable>(_ path: String, token: String?, _ body: some Encodable) async throws(SyncError) -> Answer {
        let bytes: [UInt8]
        do { bytes = Array(try JSONEncoder().encode(body)) } catch { throw .badAnswer("cannot encode the request") }
        let data = try await post(path, token: token, contentType: "application/json", body: bytes)
        do { return try JSONDecoder().decode(Answer.self, from: data) } catch { throw .badAnswer(path) }
    }
}
