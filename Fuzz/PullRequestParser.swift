// libFuzzer target: the server's reader of a pull's body (`PullRequest(json:)`, PROTOCOL.md
// §9.4), hand-written for speed. Built and run by scripts/fuzz. Any bytes are refused or
// read; what is read, written again by Foundation's encoder, reads back the same.
import Foundation
import TandemProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPullRequestParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let request = try? PullRequest(json: bytes) {
        guard let again = try? JSONEncoder().encode(request), let reread = try? PullRequest(json: Array(again)) else {
            preconditionFailure("a read request does not survive Foundation's encoding")
        }
        precondition(
            reread.cursors == request.cursors && reread.limit == request.limit && reread.directory == request.directory
                && reread.subscriptions == request.subscriptions, "a read request reads back differently")
    }
    return 0
}
