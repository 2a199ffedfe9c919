/*
 * printf.c - a small printf. Integer conversions only.
 *
 * 64-bit values are converted with 32-bit arithmetic (see u64_divmod), so the
 * 32-bit runtime needs no libgcc helpers such as __udivdi3.
 */
#include "rt.h"

struct sink {
	char *buf;   /* NULL: write to the serial port */
	size_t size; /* capacity of buf, including the terminating NUL */
	size_t len;  /* characters produced so far */
};

static void put(struct sink *s, char c)
{
	if (!s->buf)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_n(struct sink *s, char c, int n)
{
	while (n-- > 0)
		put(s, c);
}

/* Divide v by base (2..16) in place and return the remainder. */
static unsigned u64_divmod(uint64_t *v, unsigned base)
{
	uint32_t hi = (uint32_t)(*v >> 32), lo = (uint32_t)*v;
	uint32_t qhi = hi / base, rem = hi % base;
	uint32_t part, qmid, qlo;

	/* Long division of lo in two 16-bit digits: (rem << 16 | d) < 2^20. */
	part = (rem << 16) | (lo >> 16);
	qmid = part / base;
	rem = part % base;
	part = (rem << 16) | (lo & 0xFFFF);
	qlo = part / base;
	rem = part % base;
	*v = ((uint64_t)qhi << 32) | (qmid << 16) | qlo;
	return rem;
}

struct spec {
	int left, zero, alt, plus, space;
	int width;
	int prec; /* -1: none */
};

static void put_str(struct sink *s, const struct spec *sp, const char *str)
{
	int n = 0;

	if (!str)
		str = "(null)";
	while (str[n] && (sp->prec < 0 || n < sp->prec))
		n++;
	if (!sp->left)
		put_n(s, ' ', sp->width - n);
	for (int i = 0; i < n; i++)
		put(s, str[i]);
	if (sp->left)
		put_n(s, ' ', sp->width - n);
}

static void put_num(struct sink *s, const struct spec *sp, uint64_t v, int neg,
		    unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, prefix_len = 0, ndigits, pad;
	char prefix[3];

	do {
		tmp[n++] = digits[u64_divmod(&v, base)];
	} while (v);
	if (sp->prec == 0 && n == 1 && tmp[0] == '0')
		n = 0;

	if (neg)
		prefix[prefix_len++] = '-';
	else if (sp->plus)
		prefix[prefix_len++] = '+';
	else if (sp->space)
		prefix[prefix_len++] = ' ';
	if (sp->alt && base == 16) {
		prefix[prefix_len++] = '0';
		prefix[prefix_len++] = upper ? 'X' : 'x';
	} else if (sp->alt && base == 8 && (n == 0 || tmp[n - 1] != '0')) {
		prefix[prefix_len++] = '0';
	}

	ndigits = n;
	if (sp->prec > ndigits)
		ndigits = sp->prec;
	pad = sp->width - ndigits - prefix_len;

	if (!sp->left && !(sp->zero && sp->prec < 0))
		put_n(s, ' ', pad);
	for (int i = 0; i < prefix_len; i++)
		put(s, prefix[i]);
	if (!sp->left && sp->zero && sp->prec < 0)
		put_n(s, '0', pad);
	put_n(s, '0', ndigits - n);
	while (n)
		put(s, tmp[--n]);
	if (sp->left)
		put_n(s, ' ', pad);
}

enum len { LEN_INT, LEN_CHAR, LEN_SHORT, LEN_LONG, LEN_LLONG, LEN_SIZE };

static int format(struct sink *s, const char *fmt, va_list ap)
{
	while (*fmt) {
		struct spec sp = { 0, 0, 0, 0, 0, 0, -1 };
		enum len len = LEN_INT;
		uint64_t u;
		int64_t i;
		char c;

		if (*fmt != '%') {
			put(s, *fmt++);
			continue;
		}
		fmt++;

		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = 1;
			else if (*fmt == '0')
				sp.zero = 1;
			else if (*fmt == '#')
				sp.alt = 1;
			else if (*fmt == '+')
				sp.plus = 1;
			else if (*fmt == ' ')
				sp.space = 1;
			else
				break;
		}
		if (*fmt == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = 1;
				sp.width = -sp.width;
			}
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			sp.width = sp.width * 10 + (*fmt++ - '0');
		if (*fmt == '.') {
			fmt++;
			sp.prec = 0;
			if (*fmt == '*') {
				sp.prec = va_arg(ap, int);
				fmt++;
			}
			while (*fmt >= '0' && *fmt <= '9')
				sp.prec = sp.prec * 10 + (*fmt++ - '0');
		}

		switch (*fmt) {
		case 'h':
			fmt++;
			len = LEN_SHORT;
			if (*fmt == 'h') {
				fmt++;
				len = LEN_CHAR;
			}
			break;
		case 'l':
			fmt++;
			len = LEN_LONG;
			if (*fmt == 'l') {
				fmt++;
				len = LEN_LLONG;
			}
			break;
		case 'z':
		case 't':
			fmt++;
			len = LEN_SIZE;
			break;
		case 'j':
			fmt++;
			len = LEN_LLONG;
			break;
		}

		c = *fmt;
		if (!c)
			break;
		fmt++;
		switch (c) {
		case 'd':
		case 'i':
			switch (len) {
			case LEN_LONG: i = va_arg(ap, long); break;
			case LEN_LLONG: i = va_arg(ap, long long); break;
			case LEN_SIZE: i = va_arg(ap, intptr_t); break;
			case LEN_CHAR: i = (signed char)va_arg(ap, int); break;
			case LEN_SHORT: i = (short)va_arg(ap, int); break;
			default: i = va_arg(ap, int); break;
			}
			/* Negate in unsigned arithmetic: INT64_MIN has no positive twin. */
			put_num(s, &sp, i < 0 ? -(uint64_t)i : (uint64_t)i, i < 0, 10, 0);
			break;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			switch (len) {
			case LEN_LONG: u = va_arg(ap, unsigned long); break;
			case LEN_LLONG: u = va_arg(ap, unsigned long long); break;
			case LEN_SIZE: u = va_arg(ap, size_t); break;
			case LEN_CHAR: u = (unsigned char)va_arg(ap, unsigned); break;
			case LEN_SHORT: u = (unsigned short)va_arg(ap, unsigned); break;
			default: u = va_arg(ap, unsigned); break;
			}
			put_num(s, &sp, u, 0, c == 'u' ? 10 : c == 'o' ? 8 : 16, c == 'X');
			break;
		case 'p':
			sp.alt = 1;
			put_num(s, &sp, (uintptr_t)va_arg(ap, void *), 0, 16, 0);
			break;
		case 'c':
			if (!sp.left)
				put_n(s, ' ', sp.width - 1);
			put(s, (char)va_arg(ap, int));
			if (sp.left)
				put_n(s, ' ', sp.width - 1);
			break;
		case 's':
			put_str(s, &sp, va_arg(ap, const char *));
			break;
		default: /* "%%" and unknown conversions print themselves */
			put(s, c);
			break;
		}
	}
	return (int)s->len;
}

int vprintf(const char *fmt, va_list ap)
{
	struct sink s = { NULL, 0, 0 };
	return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { buf, size, 0 };
	int n = format(&s, fmt, ap);

	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
