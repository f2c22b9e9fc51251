#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
static int add(int a, int b) { return a + b; }
int main(int argc, char **argv) {
	int x = INT_MAX - 1 + argc;
	char *leak = malloc(24);
	leak[0] = (char)argc;
	printf("%d\n", add(x, argc));
	leak = NULL;
	return 0;
}
