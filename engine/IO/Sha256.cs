using System.Buffers.Binary;
using System.Numerics;

namespace CamEngine.IO;

/// <summary>
/// SHA-256 in managed code, from FIPS 180-4 (section 6.2), for the run manifest's model hash.
/// <c>System.Security.Cryptography.SHA256</c> loads the platform's libssl, which aborted the process under an
/// address-space limit (<c>ulimit -v 2G</c>: "No usable version of libssl was found") after the outputs were
/// written; a hash must never be able to take a run down, so it is computed here, with no native code.
/// </summary>
internal sealed class Sha256
{
    // FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    private static readonly uint[] s_k =
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    // FIPS 180-4 5.3.3: the first 32 bits of the fractional parts of the square roots of the first 8 primes.
    private readonly uint[] _h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    private readonly uint[] _w = new uint[64];
    private readonly byte[] _block = new byte[64];
    private int _filled;
    private ulong _bytes;
    private bool _done;

    /// <summary>The hash of <paramref name="data"/>.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> data)
    {
        var sha = new Sha256();
        sha.Append(data);
        return sha.Finish();
    }

    /// <summary>The hash of everything left in <paramref name="stream"/>.</summary>
    public static byte[] Hash(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var sha = new Sha256();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = stream.Read(buffer)) > 0)
            sha.Append(buffer.AsSpan(0, n));
        return sha.Finish();
    }

    /// <summary>Adds <paramref name="data"/> to the message.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        if (_done)
            throw new InvalidOperationException("the hash is already finished");
        _bytes += (ulong)data.Length;
        if (_filled > 0)
        {
            int take = Math.Min(64 - _filled, data.Length);
            data[..take].CopyTo(_block.AsSpan(_filled));
            _filled += take;
            data = data[take..];
            if (_filled < 64)
                return;
            Compress(_block);
            _filled = 0;
        }
        while (data.Length >= 64)
        {
            Compress(data[..64]);
            data = data[64..];
        }
        data.CopyTo(_block);
        _filled = data.Length;
    }

    /// <summary>Pads the message (FIPS 180-4 5.1.1: a 1 bit, zeros, the bit length as 64 bits big-endian) and
    /// returns the 32-byte digest.</summary>
    public byte[] Finish()
    {
        if (_done)
            throw new InvalidOperationException("the hash is already finished");
        ulong bits = _bytes * 8;
        _block[_filled++] = 0x80;
        if (_filled > 56)
        {
            _block.AsSpan(_filled).Clear();
            Compress(_block);
            _filled = 0;
        }
        _block.AsSpan(_filled, 56 - _filled).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(_block.AsSpan(56), bits);
        Compress(_block);
        _done = true;
        var digest = new byte[32];
        for (int i = 0; i < 8; i++)
            BinaryPrimitives.WriteUInt32BigEndian(digest.AsSpan(4 * i), _h[i]);
        return digest;
    }

    /// <summary>FIPS 180-4 6.2.2: the message schedule and the 64 rounds on one 512-bit block.</summary>
    private void Compress(ReadOnlySpan<byte> block)
    {
        var w = _w;
        for (int t = 0; t < 16; t++)
            w[t] = BinaryPrimitives.ReadUInt32BigEndian(block[(4 * t)..]);
        for (int t = 16; t < 64; t++)
        {
            uint s0 = BitOperations.RotateRight(w[t - 15], 7) ^ BitOperations.RotateRight(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint s1 = BitOperations.RotateRight(w[t - 2], 17) ^ BitOperations.RotateRight(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = unchecked(s1 + w[t - 7] + s0 + w[t - 16]);
        }
        uint a = _h[0], b = _h[1], c = _h[2], d = _h[3], e = _h[4], f = _h[5], g = _h[6], h = _h[7];
        for (int t = 0; t < 64; t++)
        {
            uint sum1 = BitOperations.RotateRight(e, 6) ^ BitOperations.RotateRight(e, 11) ^ BitOperations.RotateRight(e, 25);
            uint ch = (e & f) ^ (~e & g);
            uint t1 = unchecked(h + sum1 + ch + s_k[t] + w[t]);
            uint sum0 = BitOperations.RotateRight(a, 2) ^ BitOperations.RotateRight(a, 13) ^ BitOperations.RotateRight(a, 22);
            uint maj = (a & b) ^ (a & c) ^ (b & c);
            uint t2 = unchecked(sum0 + maj);
            h = g;
            g = f;
            f = e;
            e = unchecked(d + t1);
            d = c;
            c = b;
            b = a;
            a = unchecked(t1 + t2);
        }
        unchecked
        {
            _h[0] += a;
            _h[1] += b;
            _h[2] += c;
            _h[3] += d;
            _h[4] += e;
            _h[5] += f;
            _h[6] += g;
            _h[7] += h;
        }
    }
}
