using System.Diagnostics;
using CamEngine.Imaging;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.IO;

/// <summary>
/// Issue 18, class 1: memory bounded by what is read, not by what a file claims. <c>/dev/zero</c>, a FIFO fed
/// forever and a stream with no length are read only up to the limit (or refused from their first bytes), as
/// model files, images, .npy arrays and label lists.
/// </summary>
public sealed class BoundedReaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "camengine-bounded-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static void RequireDevZero()
    {
        if (!File.Exists("/dev/zero"))
            Assert.Ignore("no /dev/zero on this system");
    }

    /// <summary>A stream that never ends: <paramref name="head"/>, then <paramref name="fill"/> forever. It has no
    /// length, like a pipe.</summary>
    private sealed class EndlessStream(byte[] head, byte fill) : Stream
    {
        public long Served { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            for (int i = 0; i < buffer.Length; i++)
                buffer[i] = Served + i < head.Length ? head[Served + i] : fill;
            Served += buffer.Length;
            return buffer.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Test]
    public void Dev_zero_is_read_only_up_to_the_limit()
    {
        RequireDevZero();
        var e = Assert.Throws<InvalidInputException>(() => BoundedReader.ReadAllBytes("/dev/zero", 1 << 20))!;
        Assert.That(e.Message, Is.EqualTo("/dev/zero: more than 1048576 bytes, the limit for this file (reading stopped there)"));
        Assert.That(() => BoundedReader.ReadAllLines("/dev/zero"), Throws.TypeOf<InvalidInputException>().With.Message.Contains("more than 16777216 bytes"));
    }

    [Test]
    public void An_endless_stream_is_read_up_to_the_limit_plus_one_byte()
    {
        var endless = new EndlessStream([], (byte)'y');
        Assert.That(() => BoundedReader.ReadAllBytes(endless, 100_000, "pipe"), Throws.TypeOf<InvalidInputException>());
        Assert.That(endless.Served, Is.EqualTo(100_001));
        using var limited = BoundedReader.Limit(new EndlessStream([], 0), 10, "pipe");
        var buffer = new byte[64];
        Assert.That(() => limited.ReadAtLeast(buffer, 64), Throws.TypeOf<InvalidInputException>().With.Message.StartsWith("pipe: more than 10 bytes"));
    }

    [Test]
    public void A_file_whose_length_reads_as_zero_is_read_by_what_arrives()
    {
        // procfs reports length 0 for files with content: the reader must not trust the length either way.
        const string status = "/proc/self/status";
        if (!File.Exists(status))
            Assert.Ignore("no procfs");
        Assert.That(new FileInfo(status).Length, Is.Zero);
        Assert.That(BoundedReader.ReadAllLines(status), Has.Some.StartsWith("Name:"));
        Assert.That(() => BoundedReader.ReadAllBytes(status, 16), Throws.TypeOf<InvalidInputException>());
    }

    [Test]
    public void A_fifo_fed_forever_is_refused_at_the_limit()
    {
        if (!OperatingSystem.IsLinux())
            Assert.Ignore("mkfifo is POSIX");
        string fifo = Path.Combine(_dir, "yes.fifo");
        using (var mk = Process.Start(new ProcessStartInfo("mkfifo", fifo) { UseShellExecute = false })!)
            mk.WaitForExit();
        using var cts = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            try
            {
                using var w = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                var yes = "y\n"u8.ToArray();
                while (!cts.IsCancellationRequested)
                    w.Write(yes);
            }
            catch (IOException)
            {
                // the reader closed the pipe: done
            }
        });
        var e = Assert.Throws<InvalidInputException>(() => BoundedReader.ReadAllLines(fifo, 1 << 20))!;
        Assert.That(e.Message, Does.Contain("more than 1048576 bytes"));
        cts.Cancel();
        Assert.That(writer.Wait(TimeSpan.FromSeconds(10)), Is.True);
    }

    [Test]
    public void Labels_read_as_lines_and_bad_text_is_refused()
    {
        string path = Path.Combine(_dir, "labels.txt");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. "cat\r\ndog\n\nbird\n"u8]);
        Assert.That(BoundedReader.ReadAllLines(path), Is.EqualTo(new[] { "cat", "dog", "", "bird" }));
        File.WriteAllBytes(path, [(byte)'a', 0xFF, (byte)'b']);
        Assert.That(() => BoundedReader.ReadAllLines(path), Throws.TypeOf<InvalidInputException>().With.Message.Contains("not UTF-8"));
        Assert.That(() => BoundedReader.ReadAllLines(path + ".missing"),
            Throws.TypeOf<InvalidInputException>().With.Message.EndsWith("cannot read: no such file"));
    }

    [Test]
    public void Dev_zero_as_an_image_is_refused_from_its_first_bytes()
    {
        RequireDevZero();
        Assert.That(() => ImageDecoder.Load("/dev/zero"), Throws.TypeOf<InvalidInputException>().With.Message.EqualTo("not a PNG, JPEG or BMP image: /dev/zero"));
        Assert.That(async () => await ImageDecoder.LoadAsync("/dev/zero"), Throws.TypeOf<InvalidInputException>());
        var endless = new EndlessStream([], (byte)'y');
        Assert.That(() => ImageDecoder.Decode(endless, "yes"), Throws.TypeOf<InvalidInputException>());
        Assert.That(endless.Served, Is.LessThanOrEqualTo(64));
    }

    [Test]
    public void Dev_zero_as_a_model_stops_after_its_8_byte_header_length()
    {
        RequireDevZero();
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFile.Load("/dev/zero"))!;
        Assert.That(e.Message, Does.StartWith("/dev/zero: "));
        var endless = new EndlessStream([], 0);
        Assert.That(() => ModelFile.Load(endless), Throws.TypeOf<InvalidModelFileException>());
        Assert.That(endless.Served, Is.LessThanOrEqualTo(8));
    }

    [Test]
    public void A_valid_model_followed_by_an_endless_stream_stops_one_byte_past_its_declared_data()
    {
        var valid = TinyModel.ValidBytes();
        var endless = new EndlessStream(valid, 0);
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFile.Load(endless))!;
        Assert.That(e.Message, Does.Contain("trailing bytes"));
        Assert.That(endless.Served, Is.LessThanOrEqualTo(valid.Length + 1 + 8 + (1 << 20)), "one probe past the data, not the 2 GiB cap");
        Assert.That(() => ModelFile.LoadAsync(new EndlessStream(valid, 0)).GetAwaiter().GetResult(),
            Throws.TypeOf<InvalidModelFileException>().With.Message.Contains("trailing bytes"));
        // A stream that ends where the data ends is still a model.
        Assert.That(ModelFile.Load(new MemoryStream(valid)).Graph.Nodes, Is.Not.Empty);
    }

    [Test]
    public void Npy_from_dev_zero_and_a_pipe_claiming_gigabytes_costs_only_what_is_read()
    {
        RequireDevZero();
        Assert.That(() => Npy.Read("/dev/zero"), Throws.TypeOf<InvalidInputException>().With.Message.Contains("bad magic"));
        // A header declaring 2^28 float32 (1 GiB), followed by 100 bytes: a truncated pipe.
        const string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (16384, 16384), }";
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        var claim = new byte[total];
        claim[0] = 0x93;
        "NUMPY"u8.CopyTo(claim.AsSpan(1));
        claim[6] = 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(claim.AsSpan(8), (ushort)(total - 10));
        System.Text.Encoding.ASCII.GetBytes(dict, claim.AsSpan(10));
        claim.AsSpan(10 + dict.Length).Fill((byte)' ');
        claim[^1] = (byte)'\n';
        var pipe = new NoLengthStream([.. claim, .. new byte[100]]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.That(() => Npy.Read(pipe, "pipe"), Throws.TypeOf<InvalidInputException>().With.Message.Contains("truncated .npy data"));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(64L << 20), "allocated as data arrived, not the 1 GiB declared");
    }

    /// <summary>A finite stream without a length (a pipe).</summary>
    private sealed class NoLengthStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
