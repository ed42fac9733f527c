public import TandemProtocol

/// What can go wrong while syncing, said so a person can act on it.
public enum SyncError: Error, Equatable, Sendable, CustomStringConvertible {
    case notEnrolled
    case insecureTransport(String)
    case invalidServer(String)
    case unreachable(String)
    /// The server answered with an error; `message` is its sentence.
    case server(status: Int, code: String, message: String)
    case refused([Refusal], serverTime: UInt64)
    case badAnswer(String)

    public var description: String {
        switch self {
        case .notEnrolled: "This home is not enrolled with a server: run 'tandem enroll --server URL --code CODE'."
        case .insecureTransport(let host):
            "Refusing to send a token over plain HTTP to \(host); use https://, or --allow-insecure on a trusted network."
        case .invalidServer(let url): "\(url) is not a server URL (http://host:port or https://host)."
        case .unreachable(let server): "Cannot reach \(server); your changes are kept and will sync later."
        case .server(let status, _, let message): "The server refused (\(status)): \(message)"
        case .refused(let refusals, _):
            "The server refused \(refusals.count) change(s): " + Set(refusals.map(\.reason)).sorted().joined(separator: "; ") + ". They stay in the outbox."
        case .badAnswer(let what): "The server's answer was not understood: \(what)."
        }
    }

    /// The server's error code, if the server answered with one.
    public var code: String? {
        if case .server(_, let code, _) = self { return code }
        return nil
    }

    /// Worth retrying later: the network, or the server's own trouble.
    public var isTransient: Bool {
        switch self {
        case .unreachable: true
        // A member's unused link codes stay until used or expired: asking again soon won't help.
        case .server(let status, let code, _): status >= 500 || (status == 429 && code != ErrorCode.tooManyCodes.rawValue)
        default: false
        }
    }
}
