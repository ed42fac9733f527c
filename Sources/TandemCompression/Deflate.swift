
import CZlib

/// Raw deflate (RFC 1951) through the system zlib: how batches travel (PROTOCOL.md §4.3).
///
/// ```swift
/// let packed = try Deflate.compress(batch.encoded())
/// let bytes = try Deflate.decompress(packed, limit: 16 << 20)
/// ```
///
/// `decompress` stops as soon as the output would pass `limit`, so a deflate bomb is
/// refused before it is inflated past the cap.
public enum Deflate {
    public static func compress(_ input: [UInt8], level: Int32 = 6) throws(DeflateError) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .zlib("deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 16)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = UInt32(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = UInt32(outBuffer.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw .zlib("deflate did not finish") }
        output.removeLast(output.count - Int(stream.total_out))
        return output
    }

    /// Inflates raw deflate data of at most `limit` bytes.
    ///
    /// - Throws: `DeflateError.tooLarge` once the output passes `limit`; `.corrupt` for
    ///   data that is not complete raw deflate, or that has bytes after its end.
    public static func decompress(_ input: [UInt8], limit: Int) throws(DeflateError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .zlib("inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        var result: Result<Void, DeflateError> = .success(())
        input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { outBuffer -> (Int32, Int) in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = UInt32(outBuffer.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, outBuffer.count - Int(stream.avail_out))
                }
                if output.count + produced > limit { result = .failure(.tooLarge(limit: limit)); return }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_STREAM_END:
                    if stream.avail_in != 0 { result = .failure(.corrupt) }
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced > 0:
                    continue
                default:
                    result = .failure(.corrupt)
                    return
                }
            }
        }
        try result.get()
        return output
    }
}

/// Why compressed bytes could not be used.
public enum DeflateError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLarge(limit: Int)
    case corrupt
    case zlib(String)

    public var description: String {
        switch self {
        case .tooLarge(let limit): "The compressed data inflates to more than \(limit) bytes."
        case .corrupt: "The compressed data is not complete raw deflate."
        case .zlib(let what): "zlib failed: \(what)."
        }
    }
}
