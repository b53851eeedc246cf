
O"M
ÿÿÿÿÿÿÿÿÿsink07
sink0PZ&
0123456789abcdeffedcba9876543210