#include <stdio.h>
int main(void) { puts("muscle"); return 0; }
