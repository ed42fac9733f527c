import HTTPTypes
import Hummingbird

/// Answers requests no route takes like every other error (PROTOCOL.md §9.8): an unknown
/// path gets 404 `not-found`, a known path with a method it does not have 405
/// `method-not-allowed` with `Allow`, each with the JSON body and `Tandem-Server-Time`,
/// logged and counted. (The router alone answers both with an empty 404.)
struct UnmatchedRoutes: RouterMiddleware {
    typealias Context = TandemRequestContext
    /// Every path the server routes, with its methods.
    let routes: [String: [HTTPRequest.Method]]
    let server: SyncServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let known = routes[path]
            let route = known == nil ? "unmatched" : path
            return await server.handle(route, request, context) { _ in
                guard let allowed = known else { throw ServerError.notFound }
                throw ServerError.methodNotAllowed(allowed: allowed.map(\.rawValue))
            }
        }
    }
}
