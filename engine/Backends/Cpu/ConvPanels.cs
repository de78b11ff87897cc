namespace CamEngine.Backends.Cpu;

/// <summary>
/// Geometry of the phase-split, zero-padded copy of a conv input that turns every im2col row into a
/// contiguous run. The padded input (Hp = PT+H+PB, Wp = PL+W+PR) is split by stride into SH x SW phases;
/// phase (a, b) holds padded rows a, a+SH, ... and columns b, b+SW, ... as an Hq x Wq plane
/// (Hq = ceil(Hp/SH), Wq = ceil(Wp/SW)). Padded position (oh*SH + kh*DH, ow*SW + kw*DW) then lives in phase
/// ((kh*DH) % SH, (kw*DW) % SW) at (oh + kh*DH/SH, ow + kw*DW/SW): for fixed (c, kh, kw) the values along ow are
/// consecutive. GEMM columns j run over (image, oh, ow) with ow up to Wq: the Wq - OW extra columns per row are
/// computed and thrown away (their reads stay inside the buffer thanks to <see cref="Slack"/>). A
/// <see cref="Compact"/> plan has no such columns (j = image*OH*OW + oh*OW + ow: the packer breaks its runs at each
/// output row), so for one image the GEMM's C is the output itself.
/// <code>buffer: [c][a][b][image][Hq][Wq] + slack      columns j = image*OH*Wq + oh*Wq + ow</code>
/// </summary>
internal readonly record struct ConvPlan(Kernels.ConvShape S, int Images, bool Compact = false)
{
    public int Hq => (S.H + S.PadTop + S.PadBottom + S.StrideH - 1) / S.StrideH;

    public int Wq => (S.W + S.PadLeft + S.PadRight + S.StrideW - 1) / S.StrideW;

    /// <summary>One phase plane of one image.</summary>
    public long Plane => (long)Hq * Wq;

    /// <summary>Floats per channel: every phase of every image in the chunk.</summary>
    public long ChannelStride => (long)S.StrideH * S.StrideW * Images * Plane;

    /// <summary>Zeros after the last plane: garbage columns read up to (KW-1)*DW/SW past it.</summary>
    public long Slack => (long)S.KW * S.DilationW + 64;

    public long BufferLength => S.C * ChannelStride + Slack;

    /// <summary>GEMM columns per image.</summary>
    public int ColsPerImage => S.OH * (Compact ? S.OW : Wq);

    /// <summary>GEMM columns in the chunk.</summary>
    public int Columns => Images * ColsPerImage;

    /// <summary>Rows of the per-group im2col matrix: C/G * KH * KW.</summary>
    public int Crs => S.CPerGroup * S.KH * S.KW;

    /// <summary>Buffer offset of im2col row (c, kh, kw) of group <paramref name="g"/>, for column 0.</summary>
    public long[] RowOffsets(int g)
    {
        var r = new long[Crs];
        int i = 0;
        for (int c = 0; c < S.CPerGroup; c++)
        for (int kh = 0; kh < S.KH; kh++)
        for (int kw = 0; kw < S.KW; kw++)
        {
            int dyOff = kh * S.DilationH, dxOff = kw * S.DilationW;
            int phase = dyOff % S.StrideH * S.StrideW + dxOff % S.StrideW;
            r[i++] = (g * S.CPerGroup + c) * ChannelStride + phase * Images * Plane
                     + (long)(dyOff / S.StrideH) * Wq + dxOff / S.StrideW;
        }
        return r;
    }

    /// <summary>Buffer offset of padded position (ihp, iwp) of channel c, image img.</summary>
    public long At(int c, int img, int ihp, int iwp) =>
        c * ChannelStride + (ihp % S.StrideH * S.StrideW + iwp % S.StrideW) * Images * Plane + img * Plane
        + (long)(ihp / S.StrideH) * Wq + iwp / S.StrideW;

    /// <summary>Floats the phase buffer or one temporary may take before images are split into chunks (16 MB);
    /// tests lower it to exercise the chunk loop.</summary>
    internal static long ChunkFloats { get; set; } = 4L << 20;

    /// <summary>Images per chunk so the phase buffer and one (rows x columns) temporary stay near <see cref="ChunkFloats"/>.</summary>
    public static int ChunkImages(Kernels.ConvShape s, int tempRowsPerColumn)
    {
        var one = new ConvPlan(s, 1);
        long perImage = Math.Max(s.C * one.ChannelStride, (long)tempRowsPerColumn * one.ColsPerImage);
        return (int)Math.Clamp(ChunkFloats / Math.Max(perImage, 1), 1, s.N);
    }
}

/// <summary>B = im2col of the phase buffer: B(r, j) = buffer[rowOffset[r] + q(j)] (conv forward).</summary>
internal readonly unsafe struct ConvColumns(float* buffer, long* rowOffsets, ConvPlan plan) : IPanelSource
{
    /// <summary>Whether <see cref="Pack"/> copies a block whose panels lie in one image row by row (each im2col row's
    /// run read once, in order) rather than panel by panel. The bench switches it.</summary>
    internal static bool RowOrder { get; set; } = true;

    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        const int NR = PackedGemm.NR;
        int cols = plan.Columns, per = plan.ColsPerImage, ow = plan.S.OW, wq = plan.Wq;
        long plane = plan.Plane;
        long* ro = rowOffsets + k0;
        int firstImage = j0 / per, within0 = j0 - firstImage * per, whole = nc / NR;
        if (RowOrder && !plan.Compact && whole > 1 && within0 + whole * NR <= per)
        {
            // The block's full panels lie in one image's columns: each im2col row's run of whole*32 floats is read once,
            // in order, into the panels (row by row, not panel by panel: one stream per row instead of a jump between
            // rows every 128 bytes). A last partial panel, if any, goes the general way below.
            float* src0 = buffer + firstImage * plane + within0;
            long panelStride = (long)kc * NR;
            for (int kk = 0; kk < kc; kk++)
            {
                float* src = src0 + ro[kk];
                float* d = dst + kk * NR;
                for (int q = 0; q < whole; q++, src += NR, d += panelStride)
                    PackedGemm.Copy32(src, d);
            }
            int done = whole * NR;
            if (done == nc)
                return;
            dst += whole * panelStride;
            j0 += done;
            nc -= done;
        }
        for (int jp = 0; jp < nc; jp += NR, dst += (long)kc * NR)
        {
            int jStart = j0 + jp, valid = Math.Min(NR, cols - jStart);
            int lane = 0;
            while (lane < valid)
            {
                int j = jStart + lane, img = j / per, within = j - img * per;
                int len = Math.Min(valid - lane, per - within);
                long at = within;
                if (plan.Compact)
                {
                    // Output pixel (oh, c) is column oh*Wq + c of the phase planes; a run ends with its row.
                    int oh = within / ow, col = within - oh * ow;
                    at = (long)oh * wq + col;
                    len = Math.Min(len, ow - col);
                }
                float* src = buffer + img * plane + at;
                if (len == NR)
                {
                    for (int kk = 0; kk < kc; kk++)
                        PackedGemm.Copy32(src + ro[kk], dst + kk * NR);
                }
                else
                {
                    for (int kk = 0; kk < kc; kk++)
                        new ReadOnlySpan<float>(src + ro[kk], len).CopyTo(new Span<float>(dst + kk * NR + lane, len));
                }
                lane += len;
            }
            if (valid < NR)
            {
                for (int kk = 0; kk < kc; kk++)
                    new Span<float>(dst + kk * NR + valid, NR - valid).Clear();
            }
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

/// <summary>B = the transposed im2col: B(j, r) = buffer[rowOffset[r] + q(j)] (conv backward-weights).</summary>
internal readonly unsafe struct ConvColumnsTransposed(float* buffer, long* rowOffsets, int rows, ConvPlan plan)
    : IPanelSource
{
    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        const int NR = PackedGemm.NR;
        int per = plan.ColsPerImage;
        long plane = plan.Plane;
        long* q = stackalloc long[kc];
        for (int kk = 0; kk < kc; kk++)
        {
            int j = k0 + kk, img = j / per;
            q[kk] = img * plane + (j - img * per);
        }
        for (int jp = 0; jp < nc; jp += NR, dst += (long)kc * NR)
        {
            int valid = Math.Min(NR, rows - (j0 + jp));
            for (int lane = 0; lane < NR; lane++)
            {
                float* d = dst + lane;
                if (lane >= valid)
                {
                    for (int kk = 0; kk < kc; kk++)
                        d[kk * NR] = 0f;
                    continue;
                }
                float* src = buffer + rowOffsets[j0 + jp + lane];
                for (int kk = 0; kk < kc; kk++)
                    d[kk * NR] = src[q[kk]];
            }
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

/// <summary>
/// B = the columns of a 1x1 unpadded conv with stride (SH, SW) over one image, read from x itself (no phase buffer):
/// B(c, j) = x[c*H*W + (j / OW)*SH*W + (j % OW)*SW], j an output pixel of the image. <see cref="Pack"/> gathers each
/// channel's pixels of the block row by row (<see cref="DepthwiseConv.Gather"/>: stride 2 as permutes of two loads).
/// </summary>
internal readonly unsafe struct SubsampledColumns(float* image, Kernels.ConvShape s, CpuSimd simd) : IPanelSource
{
    /// <inheritdoc/>
    public void Pack(float* dst, int k0, int kc, int j0, int nc)
    {
        const int NR = PackedGemm.NR;
        int ow = s.OW, w = s.W, sw = s.StrideW;
        long plane = (long)s.H * s.W, rowStep = (long)s.StrideH * s.W;
        // The block's runs: pieces of output rows that stay in one panel (source offset, destination offset, length).
        int maxRuns = nc / Math.Min(ow, NR) + 2 * (nc / NR + 1) + 2;
        var runs = stackalloc (long Src, long Dst, int Len)[maxRuns];
        int count = 0;
        for (int j = j0; j < j0 + nc;)
        {
            int oh = j / ow, col = j - oh * ow, local = j - j0, lane = local % NR;
            int len = Math.Min(Math.Min(ow - col, NR - lane), j0 + nc - j);
            runs[count++] = (oh * rowStep + (long)col * sw, (long)(local / NR) * kc * NR + lane, len);
            j += len;
        }
        for (int kk = 0; kk < kc; kk++)
        {
            float* src = image + (k0 + kk) * plane;
            float* d = dst + kk * NR;
            for (int r = 0; r < count; r++)
            {
                var (so, dof, len) = runs[r];
                float* a = src + so, b = d + dof;
                if (sw == 1)
                    new ReadOnlySpan<float>(a, len).CopyTo(new Span<float>(b, len));
                else
                    DepthwiseConv.Gather(a, sw, b, len, w - (int)(so % w), simd); // reads stay inside the input row
            }
        }
        if (nc % NR != 0)
        {
            // Lanes past the last column are zero.
            int last = nc / NR, from = nc - last * NR;
            float* p = dst + (long)last * kc * NR;
            for (int kk = 0; kk < kc; kk++)
                new Span<float>(p + kk * NR + from, NR - from).Clear();
        }
    }

    /// <inheritdoc/>
    public float* Packed(int k0, int kc, int j0) => null;
}

