public import Hummingbird
import Foundation
import HTTPTypes
public import NIOCore

/// The request context of the server's routes: Hummingbird's basics plus the peer's
/// address, which throttling uses behind a trusted proxy.
public struct TandemRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's address: the last `X-Forwarded-For` hop when the peer is the trusted
    /// proxy, else nil (without a proxy, addresses are not used).
    func clientAddress(of request: Request, trustedProxy: String?) -> String? {
        Self.clientAddress(peer: remoteAddress, forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!], trustedProxy: trustedProxy)
    }

    /// The last `X-Forwarded-For` hop when `peer` is the trusted proxy, else nil.
    static func clientAddress(peer: SocketAddress?, forwardedFor: String?, trustedProxy: String?) -> String? {
        guard let trustedProxy, peer?.ipAddress == trustedProxy, let forwardedFor else { return nil }
        return forwardedFor.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Who is on the other end, for throttling that applies with or without a proxy: the
    /// last `X-Forwarded-For` hop when the peer is the trusted proxy (the hop the proxy
    /// itself added; earlier hops are the client's word), else the peer's own address.
    func peerAddress(of request: Request, trustedProxy: String?) -> String {
        clientAddress(of: request, trustedProxy: trustedProxy) ?? remoteAddress?.ipAddress ?? "unknown"
    }
}
