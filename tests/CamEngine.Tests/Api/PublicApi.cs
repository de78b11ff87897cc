using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace CamEngine.Tests.Api;

/// <summary>
/// Writes an assembly's public surface as text, one type per header line and one member per indented line, sorted,
/// so that two versions diff line by line: what <see cref="PublicApiTests"/> compares with the approved files.
/// </summary>
internal static class PublicApi
{
    private const BindingFlags Declared =
        BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static string Describe(Assembly assembly)
    {
        var text = new StringBuilder();
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            text.Append(Header(type)).Append('\n');
            foreach (var line in Members(type).Order(StringComparer.Ordinal))
                text.Append("  ").Append(line).Append('\n');
        }
        return text.ToString();
    }

    private static string Header(Type t)
    {
        string kind = t switch
        {
            { IsEnum: true } => "enum",
            { IsInterface: true } => "interface",
            _ when typeof(Delegate).IsAssignableFrom(t.BaseType) => "delegate",
            { IsValueType: true } => IsRecord(t) ? "record struct" : "struct",
            { IsAbstract: true, IsSealed: true } => "static class",
            _ => (t.IsAbstract ? "abstract " : t.IsSealed ? "sealed " : "") + (IsRecord(t) ? "record" : "class"),
        };
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && b != typeof(MulticastDelegate))
            bases.Add(Name(b));
        bases.AddRange(t.GetInterfaces()
            .Where(i => !(i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEquatable<>) && i.GenericTypeArguments[0] == t))
            .Select(Name).Order(StringComparer.Ordinal));
        return $"{kind} {Name(t)}" + (bases.Count > 0 ? " : " + string.Join(", ", bases) : "");
    }

    private static bool IsRecord(Type t) => t.GetMethod("<Clone>$") != null || t.GetMethod("PrintMembers", BindingFlags.NonPublic | BindingFlags.Instance) != null;

    private static IEnumerable<string> Members(Type t)
    {
        var nullability = new NullabilityInfoContext();
        if (t.IsEnum)
        {
            foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Static))
                yield return $"{f.Name} = {Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)}";
            yield break;
        }
        if (typeof(Delegate).IsAssignableFrom(t.BaseType))
        {
            var invoke = t.GetMethod("Invoke")!;
            yield return $"{Returned(invoke, nullability)} Invoke({Parameters(invoke, nullability)})";
            yield break;
        }
        foreach (var c in t.GetConstructors(Declared))
            yield return $"{(c.IsStatic ? "static " : "")}.ctor({Parameters(c, nullability)})";
        foreach (var m in t.GetMethods(Declared).Where(m => (!m.IsSpecialName || m.Name.StartsWith("op_", StringComparison.Ordinal)) && !m.Name.StartsWith('<')))
        {
            string generic = m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : "";
            string modifiers = (m.IsStatic ? "static " : "") + (m.IsAbstract && !t.IsInterface ? "abstract " : m.IsVirtual && !m.IsFinal && !t.IsInterface ? "virtual " : "");
            yield return $"{modifiers}{Returned(m, nullability)} {m.Name}{generic}({Parameters(m, nullability)})";
        }
        foreach (var p in t.GetProperties(Declared))
        {
            var get = p.GetMethod is { IsPublic: true } ? "get; " : "";
            var set = p.SetMethod is { IsPublic: true } s
                ? s.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) ? "init; " : "set; "
                : "";
            var accessor = p.GetMethod ?? p.SetMethod!;
            string index = p.GetIndexParameters() is { Length: > 0 } ip
                ? "this[" + string.Join(", ", ip.Select(x => $"{Name(x.ParameterType)} {x.Name}")) + "]"
                : p.Name;
            string required = p.GetCustomAttribute<RequiredMemberAttribute>() != null ? "required " : "";
            yield return $"{(accessor.IsStatic ? "static " : "")}{required}{Typed(p.PropertyType, nullability.Create(p).ReadState)} {index} {{ {get}{set}}}";
        }
        foreach (var f in t.GetFields(Declared))
        {
            string modifiers = f.IsLiteral ? "const " : (f.IsStatic ? "static " : "") + (f.IsInitOnly ? "readonly " : "");
            string value = f.IsLiteral ? " = " + Literal(f.GetRawConstantValue()) : "";
            yield return $"{modifiers}{Typed(f.FieldType, nullability.Create(f).ReadState)} {f.Name}{value}";
        }
        foreach (var e in t.GetEvents(Declared))
            yield return $"event {Name(e.EventHandlerType!)} {e.Name}";
    }

    private static string Returned(MethodInfo m, NullabilityInfoContext n) =>
        Typed(m.ReturnType, m.ReturnType == typeof(void) ? NullabilityState.Unknown : n.Create(m.ReturnParameter).ReadState);

    private static string Parameters(MethodBase m, NullabilityInfoContext n) =>
        string.Join(", ", m.GetParameters().Select(p =>
        {
            string prefix = p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : p.GetCustomAttribute<ParamArrayAttribute>() != null ? "params " : "";
            var type = p.ParameterType.IsByRef ? p.ParameterType.GetElementType()! : p.ParameterType;
            string value = !p.HasDefaultValue ? ""
                : p.DefaultValue is null && type.IsValueType && Nullable.GetUnderlyingType(type) is null ? " = default"
                : " = " + Literal(p.DefaultValue);
            return $"{prefix}{Typed(type, n.Create(p).ReadState)} {p.Name}{value}";
        }));

    private static string Typed(Type t, NullabilityState state) =>
        Name(t) + (state == NullabilityState.Nullable && !t.IsValueType ? "?" : "");

    private static string Literal(object? v) => v switch
    {
        null => "null",
        string s => $"\"{s}\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Name(Type t)
    {
        if (t.IsGenericParameter)
            return t.Name;
        if (t.IsArray)
            return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsPointer || t.IsByRef)
            return Name(t.GetElementType()!) + (t.IsPointer ? "*" : "&");
        if (Nullable.GetUnderlyingType(t) is { } inner)
            return Name(inner) + "?";
        string name = (t.IsNested ? Name(t.DeclaringType!) + "." : t.Namespace is { } ns ? ns + "." : "") + t.Name;
        if (!t.IsGenericType)
            return name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        var args = t.GetGenericArguments();
        // A nested type's arguments include its declaring type's; show only its own.
        int own = t.IsNested ? args.Length - t.DeclaringType!.GetGenericArguments().Length : args.Length;
        return (tick >= 0 ? name[..tick] : name) + (own > 0 ? "<" + string.Join(", ", args.Skip(args.Length - own).Select(Name)) + ">" : "");
    }
}
